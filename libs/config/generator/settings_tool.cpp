// mp3c-settings: turns libs/config/settings.json, where every setting is declared once, into what uses it.
//
//   mp3c-settings header settings.json OUT.hpp            the C++ declarations (mp3c/settings.hpp, at build time)
//   mp3c-settings doc --check settings.json DOC.md         exit 1, naming the tables, when DOC's tables are stale
//   mp3c-settings doc --write settings.json DOC.md         rewrites DOC's tables in place
//
// In DOC each table sits between `<!-- settings: NAME -->` and `<!-- end settings -->`; the prose around them is
// written by hand.
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>

#include "mp3c/config.hpp"

namespace {

using mp3c::config::Kind;
using mp3c::config::Setting;
using nlohmann::json;

const std::map<std::string, Kind> kKinds = {
    {"text", Kind::text}, {"secret", Kind::secret},   {"integer", Kind::integer},   {"number", Kind::number},
    {"port", Kind::port}, {"boolean", Kind::boolean}, {"duration", Kind::duration}, {"bytes", Kind::bytes}};

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::stringstream buffer;
    buffer << in.rdbuf();
    return buffer.str();
}

std::string text(const json& s, const char* key) { return s.contains(key) ? s.at(key).get<std::string>() : ""; }

// A declaration as the code sees it. Its strings are views into `s`, which must outlive the result.
Setting setting_of(const json& s) {
    auto keep = [&](const char* key) -> std::string_view {
        return s.contains(key) ? std::string_view(s.at(key).get_ref<const std::string&>()) : std::string_view();
    };
    auto kind = kKinds.find(s.at("kind").get<std::string>());
    if (kind == kKinds.end()) throw std::runtime_error(text(s, "name") + ": unknown kind");
    return Setting{.name = keep("name"),
                   .kind = kind->second,
                   .fallback = keep("default"),
                   .help = keep("help"),
                   .min = s.value("min", 0.0),
                   .max = s.value("max", 0.0),
                   .required = s.value("required", false),
                   .shown_default = keep("shown_default")};
}

std::string cpp_string(const std::string& value) {
    std::string out = "\"";
    for (char c : value) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

std::string cpp_number(double v) {
    std::ostringstream out;
    out.precision(17);
    out << v;
    return out.str();
}

std::string header(const json& doc) {
    std::string out =
        "// Generated from libs/config/settings.json by mp3c-settings: edit that file, not this one.\n"
        "#pragma once\n\n#include \"mp3c/config.hpp\"\n";
    std::string groups;
    for (const auto& group : doc.at("groups")) {
        std::string ns = group.at("namespace").get<std::string>();
        out += "\nnamespace " + ns + " {\n\n";
        std::string all;
        for (const auto& s : group.at("settings")) {
            std::string constant = text(s, "constant");
            out += "inline constexpr mp3c::config::Setting " + constant + "{";
            out += ".name = " + cpp_string(text(s, "name"));
            out += ", .kind = mp3c::config::Kind::" + s.at("kind").get<std::string>();
            out += ", .fallback = " + cpp_string(text(s, "default"));
            out += ", .help = " + cpp_string(text(s, "help"));
            out += ", .min = " + cpp_number(s.value("min", 0.0));
            out += ", .max = " + cpp_number(s.value("max", 0.0));
            out += std::string(", .required = ") + (s.value("required", false) ? "true" : "false");
            out += ", .shown_default = " + cpp_string(text(s, "shown_default")) + "};\n";
            all += (all.empty() ? "" : ", ") + constant;
        }
        out += "\ninline constexpr mp3c::config::Setting kAll[] = {" + all + "};\n\n}  // namespace " + ns + "\n";
        groups += "    {" + cpp_string(group.at("group").get<std::string>()) + ", " + ns + "::kAll},\n";
    }
    out +=
        "\nnamespace mp3c::config {\n\n// Every group of settings, for tests that look at all of them.\n"
        "inline constexpr SettingGroup kSettingGroups[] = {\n" +
        groups + "};\n\n}  // namespace mp3c::config\n";
    return out;
}

std::string row(const Setting& s) {
    std::string name = "`" + std::string(s.name) + "`";
    if (s.kind == Kind::secret) name += " / `" + std::string(s.name) + "_FILE`";
    std::string meaning(s.help);
    if (auto range = mp3c::config::describe_range(s); !range.empty()) meaning += " " + range;
    return "| " + name + " | " + mp3c::config::describe_default(s) + " | " + meaning + " |\n";
}

// The document with every table regenerated; `stale` gets the names of those that changed.
std::string documentation(const json& doc, std::string text, std::vector<std::string>& stale) {
    std::map<std::string, json> declared;  // "group.NAME"
    for (const auto& group : doc.at("groups")) {
        for (const auto& s : group.at("settings"))
            declared[group.at("group").get<std::string>() + "." + ::text(s, "name")] = s;
    }
    for (const auto& table : doc.at("tables")) {
        std::string name = table.at("table").get<std::string>();
        std::string fresh = "| Variable | Default | Meaning |\n|----------|---------|---------|\n";
        for (const auto& key : table.at("settings")) {
            auto it = declared.find(key.get<std::string>());
            if (it == declared.end()) throw std::runtime_error("table " + name + " names an undeclared " + key.dump());
            fresh += row(setting_of(it->second));
        }
        const std::string begin = "<!-- settings: " + name + " -->\n";
        auto at = text.find(begin);
        auto stop = at == std::string::npos ? at : text.find("<!-- end settings -->", at);
        if (stop == std::string::npos) throw std::runtime_error("no table marked <!-- settings: " + name + " -->");
        size_t from = at + begin.size();
        if (text.compare(from, stop - from, fresh) != 0) stale.push_back(name);
        text.replace(from, stop - from, fresh);
    }
    return text;
}

int usage() {
    std::fputs(
        "usage: mp3c-settings header SETTINGS.json OUT.hpp\n"
        "       mp3c-settings doc --check|--write SETTINGS.json DOC.md\n",
        stderr);
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    try {
        if (args.size() == 3 && args[0] == "header") {
            std::string fresh = header(json::parse(read_file(args[1])));
            // Rewritten only when it changes, so that the files including it are not rebuilt for nothing.
            std::ifstream old(args[2], std::ios::binary);
            if (old && read_file(args[2]) == fresh) return 0;
            std::ofstream(args[2], std::ios::binary | std::ios::trunc) << fresh;
            return 0;
        }
        if (args.size() == 4 && args[0] == "doc" && (args[1] == "--check" || args[1] == "--write")) {
            std::vector<std::string> stale;
            std::string fresh = documentation(json::parse(read_file(args[2])), read_file(args[3]), stale);
            if (args[1] == "--write") {
                std::ofstream(args[3], std::ios::binary | std::ios::trunc) << fresh;
                return 0;
            }
            for (const auto& name : stale) {
                std::fprintf(stderr,
                             "mp3c-settings: the '%s' table of %s differs from %s; run build/dev/bin/mp3c-settings "
                             "doc --write %s %s\n",
                             name.c_str(), args[3].c_str(), args[2].c_str(), args[2].c_str(), args[3].c_str());
            }
            return stale.empty() ? 0 : 1;
        }
        return usage();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "mp3c-settings: %s\n", e.what());
        return 1;
    }
}
