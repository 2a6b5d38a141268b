#pragma once

// What every fuzz target does when the code under test breaks a promise: say which, and abort, which libFuzzer
// reports as a crash and keeps the input for.
#include <cstdio>
#include <cstdlib>

namespace mp3c::fuzz {

inline void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "invariant violated: %s\n", what);
        std::abort();
    }
}

}  // namespace mp3c::fuzz
