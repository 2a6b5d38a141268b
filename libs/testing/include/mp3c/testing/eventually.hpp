#pragma once

#include <chrono>
#include <thread>

namespace mp3c::testing {

// Repeats `probe` until it returns true or `timeout` passes: waiting on a condition (a server came back, an event
// was applied), bounded, never a fixed sleep standing in for one.
template <class F>
bool eventually(F probe, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (probe()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return probe();
}

}  // namespace mp3c::testing
