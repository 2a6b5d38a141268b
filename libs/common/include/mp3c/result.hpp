#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

// How the code says that something did not work (docs/style.md):
// - an infrastructure failure (the database or the broker is gone, a file cannot be written) throws;
// - an expected domain outcome (wrong password, job not found, an invalid field) is a Result<T, E>;
// - a failure of a call to another system says whether trying again can help: its Outcome.
namespace mp3c {

// The value of a Result that has nothing to return: a check that passes is Result<Ok, E>{Ok{}}.
struct Ok {};

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

// A check that returns nothing, or what is wrong in words for users.
using Check = Result<Ok, std::string>;

// Whether a failed attempt may pass if made again: transient (a timeout, a server that is down or busy, a 4xx SMTP
// reply) or permanent (a refusal that will be repeated, an input that will never work). Consumers retry the first,
// within their bounds, and record the second.
enum class Outcome { transient, permanent };

// A failed call to another system (an SMTP server, a webhook receiver): its outcome, the other side's reply code
// (0 when there was none) and what happened, for logs and records.
struct Failure {
    Outcome outcome = Outcome::transient;
    long code = 0;
    std::string detail;
    bool transient() const { return outcome == Outcome::transient; }
};

}  // namespace mp3c
