#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace mp3c::testing {

// A child process (a service binary under test) with its stdout and stderr captured to a file. Killed if still
// running when destroyed.
class Process {
  public:
    Process(const std::string& program, const std::vector<std::string>& args,
            const std::map<std::string, std::string>& env);
    ~Process();
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;

    pid_t pid() const { return pid_; }
    void signal(int signal_number);
    // Waits for the process to exit; returns its exit status (128 + signal when killed), or -1 on timeout.
    int wait(std::chrono::milliseconds timeout);
    std::string output() const;
    // Waits until the output contains `text`; false when the process exits or the timeout passes first.
    bool wait_for_output(const std::string& text, std::chrono::milliseconds timeout);

  private:
    pid_t pid_ = -1;
    int status_ = -1;
    std::string log_path_;
};

struct CommandResult {
    int status;
    std::string out;  // stdout and stderr
};
// Runs a program to completion with the given standard input.
CommandResult run_command(const std::string& program, const std::vector<std::string>& args,
                          const std::map<std::string, std::string>& env, const std::string& input = {});

}  // namespace mp3c::testing
