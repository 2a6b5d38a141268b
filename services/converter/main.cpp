// converter: video to MP3. `converter convert IN OUT.mp3 [options]` converts one local file with no server at all.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>

#include "mp3c/cpu_budget.hpp"
#include "mp3c/messages.hpp"
#include "mp3c/output_options.hpp"
#include "mp3c/service_main.hpp"
#include "temporary_file.hpp"
#include "transcoder.hpp"
#include "worker.hpp"

namespace {

constexpr const char* kUsage =
    R"(usage: converter                   (no arguments: the queue worker, configured by the environment)
       converter convert IN OUT.mp3 [--bitrate N | --quality Q] [--channels N] [--sample-rate N]
                         [--start T] [--end T] [--chapters keep|split|none] [--cover auto|none]
                         [--loudness LUFS [--true-peak DBTP]]
                         [--title T] [--artist A] [--album A]
                         [--year YYYY] [--track N[/TOTAL]] [--genre G] [--max-duration SECONDS] [--threads N]

  --bitrate N        constant bitrate in kb/s: 64, 80, 96, 112, 128, 160, 192 (default), 224, 256, 320
  --quality Q        variable bitrate, LAME quality 0 (best) to 9 (smallest)
  --channels N       1 (mono) or 2 (stereo); default: the source's, at most 2
  --sample-rate N    8000 to 48000 Hz; default 44100
  --start T, --end T keep only this part: seconds (90, 12.5) or [hh:]mm:ss[.fff]
  --chapters C       keep (default: the source's chapters), split (also one MP3 per chapter, in the folder
                     OUT without .mp3, named "NN - title.mp3") or none
  --cover C          auto (default: the source's own picture, at most 600x600) or none
  --loudness LUFS    normalise to this integrated loudness (EBU R128), -31 to -5 (-16 podcasts, -14 streaming)
  --true-peak DBTP   with --loudness: the true-peak ceiling, -9 to 0 (default -1)
  --title, --artist, --album, --year, --track, --genre   the MP3's tags, over the source's
  --max-duration S   refuse longer audio (default 14400)
  --threads N        encoders: 1, decode and encode on one thread; 2 or more, the MP3 encoder beside the decoder,
                     and audio of a minute or more encoded as N segments at once (default: the cores available)

exit status: 0 converted; 1 the input cannot be converted (the reason is printed); 2 usage
)";

// --chapters split: each part into the folder named after the output, as "NN - title.mp3".
class PartFiles : public mp3c::converter::PartSink {
  public:
    explicit PartFiles(std::filesystem::path directory) : directory_(std::move(directory)) {}
    std::unique_ptr<mp3c::converter::MediaOutput> open(const mp3c::converter::PartPlan& plan) override {
        std::filesystem::create_directories(directory_);
        return std::make_unique<mp3c::converter::FileOutput>(path(plan));
    }
    mp3c::messages::Part commit(const mp3c::converter::PartPlan& plan, mp3c::converter::MediaOutput& output) override {
        static_cast<mp3c::converter::FileOutput&>(output).commit();
        mp3c::messages::Part part;
        part.size = std::filesystem::file_size(path(plan));
        std::fprintf(stderr, "converter: %s\n", path(plan).c_str());
        return part;
    }

  private:
    std::string path(const mp3c::converter::PartPlan& plan) const {
        return (directory_ / mp3c::messages::part_filename(plan.index, plan.count, plan.title)).string();
    }
    std::filesystem::path directory_;
};

int usage(const std::string& problem) {
    std::fprintf(stderr, "converter: %s\n\n%s", problem.c_str(), kUsage);
    return 2;
}

int convert_command(int argc, char** argv) {
    if (argc < 4) return usage("convert needs an input and an output file");
    // Absolute before the working directory changes (below).
    std::string in = std::filesystem::absolute(argv[2]).string(), out = std::filesystem::absolute(argv[3]).string();
    std::map<std::string, std::string> fields;
    mp3c::converter::Limits limits;
    limits.threads = mp3c::available_cores();
    static const std::map<std::string, std::string> kFlags = {
        {"--bitrate", "bitrate"},   {"--quality", "quality"},
        {"--channels", "channels"}, {"--sample-rate", "sample_rate"},
        {"--start", "start"},       {"--end", "end"},
        {"--chapters", "chapters"}, {"--title", "title"},
        {"--loudness", "loudness"}, {"--true-peak", "true_peak"},
        {"--cover", "cover"},       {"--artist", "artist"},
        {"--album", "album"},       {"--year", "year"},
        {"--track", "track"},       {"--genre", "genre"}};
    for (int i = 4; i < argc; ++i) {
        std::string flag = argv[i];
        if (i + 1 >= argc) return usage(flag + " needs a value");
        std::string value = argv[++i];
        if (flag == "--max-duration") {
            char* end = nullptr;
            long seconds = std::strtol(value.c_str(), &end, 10);
            if (*end != '\0' || seconds <= 0) return usage("--max-duration must be a positive number of seconds");
            limits.max_duration = std::chrono::seconds(seconds);
            continue;
        }
        if (flag == "--threads") {
            char* end = nullptr;
            long threads = std::strtol(value.c_str(), &end, 10);
            if (*end != '\0' || threads < 1 || threads > 64) return usage("--threads must be 1 to 64");
            limits.threads = static_cast<int>(threads);
            continue;
        }
        auto known = kFlags.find(flag);
        if (known == kFlags.end()) return usage("unknown option " + flag);
        fields[known->second] = value;
    }
    auto options = mp3c::parse_output_options(fields);
    if (!options) return usage(options.error());
    try {
        const char* tmpdir = std::getenv("TMPDIR");
        mp3c::converter::enter_empty_working_directory(tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "converter: %s\n", e.what());
        return 1;
    }
    try {
        mp3c::converter::FileInput input(in);
        mp3c::converter::FileOutput output(out);
        std::filesystem::path parts_directory(out);
        parts_directory.replace_extension();
        if (parts_directory == out) parts_directory += ".parts";
        PartFiles parts(parts_directory);
        auto result = mp3c::converter::convert(input, output, options.value(), limits, nullptr, &parts);
        output.commit();
        std::fprintf(stderr, "converter: %s: %.2f s, %d Hz, %d channel%s\n", out.c_str(), result.duration_seconds,
                     result.sample_rate, result.channels, result.channels == 1 ? "" : "s");
        if (result.loudness)
            std::fprintf(stderr, "converter: loudness %s\n", result.loudness->to_json().dump().c_str());
        return 0;
    } catch (const mp3c::converter::ConversionError& e) {
        std::fprintf(stderr, "converter: %s: %s\n", in.c_str(), e.what());
        return 1;
    }
}

}  // namespace

// Without arguments: the queue worker (see src/worker.hpp for its environment).
int run_worker() {
    using namespace mp3c;
    return service_main<converter::WorkerConfig>(
        "converter", converter::load_worker_config, [](converter::WorkerConfig config) {
            // Nothing in this process resolves a relative name against anything but an empty, removed directory.
            auto former = converter::enter_empty_working_directory(config.temporary_dir);
            log::info("working directory emptied", {{"was", former}});
            auto admin = config.admin;
            auto grace = config.shutdown_grace;
            converter::Worker worker(std::move(config));
            http::Server server(admin, worker.admin_router(), worker.registry(), worker.readiness());
            worker.start();
            server.run_until_signal();  // SIGTERM: stop taking jobs, let the current one finish within the grace
            worker.stop(grace);
            log::info("stopped");
        });
}

int main(int argc, char** argv) {
    if (argc == 1) return run_worker();
    if (argc >= 2 && std::strcmp(argv[1], "convert") == 0) return convert_command(argc, argv);
    return usage(argc < 2 ? "no command given" : std::string("unknown command '") + argv[1] + "'");
}
