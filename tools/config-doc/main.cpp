// Generates the settings tables of docs/configuration.md from the settings' declarations.
//
//   mp3c-config-doc --check docs/configuration.md   exit 1 (naming the tables) when a table differs from the code
//   mp3c-config-doc --write docs/configuration.md   rewrites the tables in place
//
// Each table sits between `<!-- settings: NAME -->` and `<!-- end settings -->`; the prose around them is written by
// hand.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "catalogue.hpp"

namespace {

using mp3c::config::Kind;
using mp3c::config::Setting;

std::string row(const Setting& s) {
    std::string name = "`" + std::string(s.name) + "`";
    if (s.kind == Kind::secret) name += " / `" + std::string(s.name) + "_FILE`";
    std::string meaning(s.help);
    if (auto range = mp3c::config::describe_range(s); !range.empty()) meaning += " " + range;
    return "| " + name + " | " + mp3c::config::describe_default(s) + " | " + meaning + " |\n";
}

std::string table(const mp3c::config_doc::Table& t) {
    std::string out = "| Variable | Default | Meaning |\n|----------|---------|---------|\n";
    for (const auto& s : t.settings) out += row(s);
    return out;
}

// The document with every marked table regenerated; `stale` collects the names of tables that changed.
std::string regenerate(const std::string& text, std::vector<std::string>& stale, std::vector<std::string>& missing) {
    std::string out = text;
    for (const auto& t : mp3c::config_doc::tables()) {
        const std::string begin = "<!-- settings: " + std::string(t.name) + " -->\n";
        const std::string end = "<!-- end settings -->";
        auto at = out.find(begin);
        auto stop = at == std::string::npos ? at : out.find(end, at);
        if (stop == std::string::npos) {
            missing.emplace_back(t.name);
            continue;
        }
        size_t from = at + begin.size();
        std::string fresh = table(t);
        if (out.compare(from, stop - from, fresh) != 0) stale.emplace_back(t.name);
        out.replace(from, stop - from, fresh);
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3 || (std::string(argv[1]) != "--check" && std::string(argv[1]) != "--write")) {
        std::fputs("usage: mp3c-config-doc --check|--write docs/configuration.md\n", stderr);
        return 2;
    }
    const bool write = std::string(argv[1]) == "--write";
    std::ifstream in(argv[2], std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "mp3c-config-doc: cannot read %s\n", argv[2]);
        return 2;
    }
    std::stringstream buffer;
    buffer << in.rdbuf();
    std::vector<std::string> stale, missing;
    std::string fresh = regenerate(buffer.str(), stale, missing);
    for (const auto& name : missing) {
        std::fprintf(stderr, "mp3c-config-doc: %s has no table marked <!-- settings: %s -->\n", argv[2], name.c_str());
    }
    if (!missing.empty()) return 1;
    if (write) {
        std::ofstream(argv[2], std::ios::binary | std::ios::trunc) << fresh;
        return 0;
    }
    for (const auto& name : stale) {
        std::fprintf(stderr,
                     "mp3c-config-doc: the '%s' table of %s differs from the settings declared in the code; run "
                     "build/dev/bin/mp3c-config-doc --write %s\n",
                     name.c_str(), argv[2], argv[2]);
    }
    return stale.empty() ? 0 : 1;
}
