#pragma once

#include <cassert>
#include <utility>
#include <variant>

namespace mp3c {

// The outcome of an operation whose failure is an expected domain result (wrong password, job not found), not an
// infrastructure failure (those throw). A small stand-in for C++23 std::expected.
template <class T, class E>
class Result {
  public:
    Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
    Result(E error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT: implicit by design

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }

    T& value() & {
        assert(ok());
        return std::get<0>(v_);
    }
    const T& value() const& {
        assert(ok());
        return std::get<0>(v_);
    }
    T&& value() && {
        assert(ok());
        return std::get<0>(std::move(v_));
    }
    const E& error() const {
        assert(!ok());
        return std::get<1>(v_);
    }

  private:
    std::variant<T, E> v_;
};

}  // namespace mp3c
