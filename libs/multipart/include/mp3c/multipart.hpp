#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "mp3c/result.hpp"

// Streaming multipart/form-data parser (RFC 7578 over the RFC 2046 multipart grammar). The body arrives in chunks
// of any size and part bodies go straight to a callback: uploads of many GiB pass through with memory bounded by the
// limits below, never by the size of a part.
namespace mp3c::multipart {

struct PartHeaders {
    std::string name;                     // from Content-Disposition: form-data; name="..."
    std::optional<std::string> filename;  // filename="..." or RFC 5987 filename*= (which wins); nullopt when absent
    std::string content_type;             // the whole value; "text/plain" (RFC 7578 default) when absent
    std::vector<std::pair<std::string, std::string>> raw;  // every header line: name lower-cased, value trimmed
};

struct Limits {
    size_t max_header_line = 8 * 1024;     // one part-header line, CRLF excluded
    size_t max_headers_bytes = 16 * 1024;  // all header lines of one part, CRLFs included, blank line excluded
    size_t max_parts = 32;
    size_t max_preamble = 16 * 1024;  // bytes before the first boundary
};

enum class Error {
    none,
    no_boundary,
    bad_boundary,
    header_line_too_long,
    headers_too_large,
    malformed_header,
    missing_content_disposition,
    too_many_parts,
    truncated,
    preamble_too_large,
    junk_after_boundary,
};

// Human text, e.g. "multipart body ended before the closing boundary".
std::string_view describe(Error error);

// The boundary parameter of a Content-Type value such as `multipart/form-data; boundary=----abc` (quoted or not,
// parameter name case-insensitive). It must be 1..70 RFC 2046 bchars, not ending in a space. Error::no_boundary when
// the media type is not multipart/form-data or the parameter is missing, Error::bad_boundary when it is invalid or
// given twice.
Result<std::string, Error> boundary_from_content_type(std::string_view content_type);

class Parser {
  public:
    struct Callbacks {
        // Return false to stop parsing (the caller refuses the part, e.g. a second file); feed() then returns false
        // with error() still Error::none, which is how a refusal is told apart from a malformed body. An empty
        // std::function accepts everything. (The `{}` initialisers let callers name only the callbacks they need
        // without GCC's -Wmissing-field-initializers.)
        std::function<bool(const PartHeaders&)> on_part_begin{};
        std::function<bool(std::string_view bytes)> on_part_data{};  // the current part's body in order, never empty
        std::function<bool()> on_part_end{};
    };

    // An invalid boundary (see boundary_from_content_type) puts the parser in Error::bad_boundary at once.
    Parser(std::string boundary, Callbacks callbacks, Limits limits = {});

    // Feeds the next chunk (an empty one is fine). Returns false on a parse error (see error()) or when a callback
    // returned false; both are sticky, and no callback runs after either. Bytes after the closing boundary (the
    // epilogue) are ignored. Callbacks must not call back into the parser.
    bool feed(std::string_view chunk);
    // Call at the end of the body: returns false with Error::truncated unless the closing boundary was seen.
    bool finish();

    Error error() const { return error_; }
    bool done() const { return state_ == State::done; }  // the closing boundary "--boundary--" was seen
    size_t parts() const { return parts_; }              // parts whose on_part_begin was called
    // Input bytes held right now: a possible delimiter start ("\r\n--boundary" prefix, at most boundary + 3 bytes)
    // while in a part body or the preamble, or the unfinished header line.
    size_t buffered() const;

  private:
    enum class State : uint8_t {
        preamble,        // skipping bytes before the first delimiter
        after_boundary,  // just past "--boundary": "--", padding or CRLF must follow
        padding,         // transport padding (SP / HTAB) before the CRLF
        boundary_cr,     // saw the CR ending the delimiter line
        close_dash,      // saw the first '-' of "--" closing the body
        headers,         // part header lines up to the blank line
        body,            // part data, streamed out
        done,            // closing boundary seen; the epilogue is ignored
    };

    bool fail(Error error);
    bool stop();
    bool consume_data(std::string_view chunk, size_t& pos);
    bool delimiter_found();
    bool consume_boundary_line(char c);
    bool consume_headers(std::string_view chunk, size_t& pos);
    bool end_header_line();
    bool end_headers();
    bool emit(std::string_view bytes);

    std::string delimiter_;  // "\r\n--" + boundary
    Callbacks callbacks_;
    Limits limits_;
    State state_ = State::preamble;
    Error error_ = Error::none;
    bool stopped_ = false;
    // The held-back bytes are always delimiter_[0, held_), so only their count is stored.
    size_t held_ = 0;
    // The body is parsed as if it started with CRLF, so a leading "--boundary" is found by the same search as every
    // later delimiter; these two bytes are not input.
    bool virtual_crlf_ = true;
    size_t preamble_bytes_ = 0;
    size_t parts_ = 0;
    std::string line_;  // the unfinished header line
    size_t headers_bytes_ = 0;
    PartHeaders part_;
};

}  // namespace mp3c::multipart
