#pragma once

// A small tmpfs mounted over a directory, for the full-disk tests: writes past its size fail with ENOSPC as on a
// full disk. Mounting needs root (CAP_SYS_ADMIN); mount() says why it could not, and the test then skips.
#include <filesystem>
#include <memory>
#include <string>

#include "mp3c/testing/process.hpp"

namespace mp3c::testing {

class Tmpfs {
  public:
    // nullptr, with the reason in `why`, when the kernel refuses.
    static std::unique_ptr<Tmpfs> mount(const std::filesystem::path& at, uint64_t bytes, std::string& why) {
        std::filesystem::create_directories(at);
        auto r = run_command("/bin/mount", {"-t", "tmpfs", "-o", options(bytes), "tmpfs", at.string()}, {});
        if (r.status != 0) {
            why = "cannot mount a tmpfs (needs root): " + r.out;
            return nullptr;
        }
        return std::unique_ptr<Tmpfs>(new Tmpfs(at));
    }

    ~Tmpfs() { run_command("/bin/umount", {"-l", at_.string()}, {}); }
    Tmpfs(const Tmpfs&) = delete;
    Tmpfs& operator=(const Tmpfs&) = delete;

    // Grows or shrinks it in place; the files stay (space freed, as an operator would).
    bool resize(uint64_t bytes) {
        return run_command("/bin/mount", {"-o", "remount," + options(bytes), at_.string()}, {}).status == 0;
    }

  private:
    explicit Tmpfs(std::filesystem::path at) : at_(std::move(at)) {}
    static std::string options(uint64_t bytes) { return "size=" + std::to_string(bytes) + ",mode=0755"; }
    std::filesystem::path at_;
};

}  // namespace mp3c::testing
