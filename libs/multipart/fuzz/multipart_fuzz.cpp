// libFuzzer target for mp3c::multipart::Parser; scripts/fuzz builds and runs it.
//
// Input layout: byte 0 = flags, then (flags & 7) chunk-size bytes, then the body. The body is parsed twice, once in
// chunks of those sizes (cycled) and once in one piece, and the two runs must report the same thing: that is what
// catches a delimiter or header line split at an unlucky position. Bits 3-5 of the flags make the N-th part
// refuse itself in on_part_begin; bit 6 selects tiny limits so the limit paths are reachable.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "mp3c/multipart.hpp"

namespace {

using mp3c::multipart::Error;
using mp3c::multipart::Limits;
using mp3c::multipart::Parser;
using mp3c::multipart::PartHeaders;

// Matches the seed corpus.
const std::string kBoundary = "fuzzB0undary";

void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "invariant violated: %s\n", what);
        std::abort();
    }
}

struct Run {
    std::string events;               // begins and ends
    std::vector<std::string> bodies;  // data concatenated per part
    Error error = Error::none;
    bool done = false;
    bool finished = false;
    size_t parts = 0;
    size_t data_bytes = 0;
};

Run run(std::string_view body, const std::vector<size_t>& sizes, unsigned refuse_at, const Limits& limits) {
    Run r;
    bool dead = false;  // a callback refused, or feed()/finish() returned false
    bool refused = false;
    bool in_part = false;
    unsigned begins = 0;
    Parser* parser = nullptr;
    const size_t data_bound = kBoundary.size() + 4;
    Parser p(kBoundary,
             {
                 .on_part_begin =
                     [&](const PartHeaders& h) {
                         check(!dead, "callback after an error or refusal");
                         check(!in_part, "part begins inside a part");
                         check(!h.content_type.empty(), "empty content type");
                         r.events +=
                             "B[" + h.name + "|" + (h.filename ? "f:" + *h.filename : "-") + "|" + h.content_type + "]";
                         if (++begins == refuse_at) {
                             dead = refused = true;
                             return false;
                         }
                         in_part = true;
                         r.bodies.emplace_back();
                         return true;
                     },
                 .on_part_data =
                     [&](std::string_view bytes) {
                         check(!dead, "callback after an error or refusal");
                         check(in_part, "data outside a part");
                         check(!bytes.empty(), "empty data callback");
                         check(parser->buffered() <= data_bound, "more than boundary + 4 bytes held in a body");
                         r.data_bytes += bytes.size();
                         r.bodies.back().append(bytes);
                         return true;
                     },
                 .on_part_end =
                     [&] {
                         check(!dead, "callback after an error or refusal");
                         check(in_part, "end outside a part");
                         in_part = false;
                         r.events += "E";
                         return true;
                     },
             },
             limits);
    parser = &p;
    const size_t line_bound = std::max(data_bound, limits.max_header_line + 1);
    size_t pos = 0;
    for (size_t i = 0; pos < body.size(); ++i) {
        const size_t n = sizes.empty() ? body.size() : std::min(sizes[i % sizes.size()], body.size() - pos);
        const bool ok = p.feed(body.substr(pos, n));
        pos += n;
        check(p.buffered() <= line_bound, "buffered() over its bound");
        check(ok || p.error() != Error::none || dead, "feed() false without a reason");
        check(!ok || p.error() == Error::none, "feed() true with an error set");
        if (!ok) {
            dead = true;
            // Sticky: feeding on must keep failing without callbacks (checked inside them).
            check(!p.feed(body.substr(pos)), "feed() succeeded after failing");
            break;
        }
    }
    const Error before_finish = p.error();
    r.finished = p.finish();
    dead = dead || !r.finished;
    check(!r.finished || p.done(), "finish() true before the closing boundary");
    check(r.finished || p.error() != Error::none || refused, "finish() false without a reason");
    check(before_finish == Error::none || p.error() == before_finish, "error changed after it was set");
    check(p.parts() <= limits.max_parts, "more parts than max_parts");
    check(r.data_bytes <= body.size(), "more part data than input");
    r.error = p.error();
    r.done = p.done();
    r.parts = p.parts();
    return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const uint8_t flags = data[0];
    const size_t n_sizes = std::min<size_t>(flags & 7u, size - 1);
    std::vector<size_t> sizes;
    for (size_t i = 0; i < n_sizes; ++i) sizes.push_back(data[1 + i] + 1u);  // >= 1 byte, so the loop advances
    const std::string_view body(reinterpret_cast<const char*>(data) + 1 + n_sizes, size - 1 - n_sizes);
    const unsigned refuse_at = (flags >> 3) & 7u;  // 0: never
    Limits limits;
    if (flags & 0x40)
        limits = Limits{.max_header_line = 40, .max_headers_bytes = 100, .max_parts = 3, .max_preamble = 8};

    const Run chunked = run(body, sizes, refuse_at, limits);
    const Run whole = run(body, {}, refuse_at, limits);
    check(chunked.events == whole.events && chunked.bodies == whole.bodies,
          "chunked and one-shot parses saw different callbacks");
    check(chunked.error == whole.error, "chunked and one-shot parses ended in different errors");
    check(chunked.done == whole.done && chunked.finished == whole.finished && chunked.parts == whole.parts,
          "chunked and one-shot parses ended in different states");

    // The Content-Type parser gets the first line of the body.
    const std::string_view line = body.substr(0, body.find('\n'));
    const auto boundary = mp3c::multipart::boundary_from_content_type(line);
    if (boundary) {
        const std::string& b = boundary.value();
        check(!b.empty() && b.size() <= 70, "boundary length out of range");
        Parser p(b, {});  // an accepted boundary must be one the parser accepts
        check(p.error() == Error::none, "boundary_from_content_type accepted a boundary the parser refuses");
    }
    return 0;
}
