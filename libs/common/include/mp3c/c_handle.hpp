#pragma once

#include <memory>

namespace mp3c {

// Owns a C library's handle (Envoy's rule: every C handle is owned by a unique_ptr with a deleter), released by the
// library's own function:  using EasyPtr = CHandle<CURL, curl_easy_cleanup>;
template <auto Release>
struct ReleaseWith {
    template <class T>
    void operator()(T* handle) const {
        Release(handle);
    }
};

template <class T, auto Release>
using CHandle = std::unique_ptr<T, ReleaseWith<Release>>;

}  // namespace mp3c
