#include "mp3c/multipart.hpp"

#include <algorithm>
#include <cstring>

#include "mp3c/enum_names.hpp"

namespace mp3c::multipart {

namespace {

bool is_alnum(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// RFC 9110 tchar. (string_view::find rather than strchr, which would also match NUL, the terminator.)
bool is_tchar(char c) { return is_alnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos; }

// RFC 2046 bchars.
bool is_bchar(char c) { return is_alnum(c) || std::string_view("'()+_,-./:=? ").find(c) != std::string_view::npos; }

bool is_ctl(char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
}

char to_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), to_lower);
    return out;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return to_lower(x) == to_lower(y); });
}

bool is_ows(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
    return s;
}

bool valid_boundary(std::string_view b) {
    return !b.empty() && b.size() <= 70 && b.back() != ' ' && std::all_of(b.begin(), b.end(), is_bchar);
}

// A cursor over a header value with the few lexical rules the two parameterised headers need.
class Lexer {
  public:
    explicit Lexer(std::string_view text) : s_(text) {}

    bool at_end() const { return i_ == s_.size(); }
    bool peek(char c) const { return i_ < s_.size() && s_[i_] == c; }
    bool take(char c) {
        if (!peek(c)) return false;
        ++i_;
        return true;
    }
    void skip_ows() {
        while (i_ < s_.size() && is_ows(s_[i_])) ++i_;
    }
    std::string_view token() {
        const size_t start = i_;
        while (i_ < s_.size() && is_tchar(s_[i_])) ++i_;
        return s_.substr(start, i_ - start);
    }
    // quoted-string with quoted-pair; false when unterminated.
    bool quoted(std::string& out) {
        if (!take('"')) return false;
        while (i_ < s_.size()) {
            const char c = s_[i_++];
            if (c == '"') return true;
            if (c == '\\') {
                if (i_ == s_.size()) return false;
                out += s_[i_++];
            } else {
                out += c;
            }
        }
        return false;
    }
    // A parameter value: quoted-string, or anything up to `;` or whitespace. Lenient on purpose: some clients send
    // unquoted boundaries with tspecials such as '='; the caller validates what it uses.
    bool value(std::string& out) {
        if (peek('"')) return quoted(out);
        const size_t start = i_;
        while (i_ < s_.size() && s_[i_] != ';' && !is_ows(s_[i_]) && s_[i_] != '"') ++i_;
        out.assign(s_.substr(start, i_ - start));
        return !out.empty();
    }

  private:
    std::string_view s_;
    size_t i_ = 0;
};

// Walks `*( OWS ";" OWS name OWS "=" OWS value )` to the end, calling on_param(lower-cased name, value); false on
// a syntax error or when on_param returns false. Empty parameters (";;", a trailing ";") are tolerated.
template <typename OnParam>
bool parse_params(Lexer& lex, OnParam on_param) {
    for (;;) {
        lex.skip_ows();
        if (lex.at_end()) return true;
        if (!lex.take(';')) return false;
        lex.skip_ows();
        if (lex.at_end() || lex.peek(';')) continue;
        const std::string_view name = lex.token();
        if (name.empty()) return false;
        lex.skip_ows();
        if (!lex.take('=')) return false;
        lex.skip_ows();
        std::string value;
        if (!lex.value(value)) return false;
        if (!on_param(lower(name), std::move(value))) return false;
    }
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool valid_utf8(std::string_view s) {
    size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        size_t len = 0;
        unsigned char lo = 0x80, hi = 0xbf;  // bounds of the second byte
        if (c < 0x80) {
            ++i;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            if (c == 0xe0) lo = 0xa0;
            if (c == 0xed) hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            if (c == 0xf0) lo = 0x90;
            if (c == 0xf4) hi = 0x8f;
        } else {
            return false;
        }
        if (s.size() - i < len) return false;
        for (size_t k = 1; k < len; ++k) {
            const auto b = static_cast<unsigned char>(s[i + k]);
            if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xbf)) return false;
        }
        i += len;
    }
    return true;
}

// RFC 5987 ext-value `charset "'" [language] "'" pct-encoded-value`, decoded to UTF-8. UTF-8 and ISO-8859-1 are the
// charsets RFC 5987 requires; others are refused rather than ignored, so that a file part never turns into a plain
// field because its filename could not be read.
std::optional<std::string> decode_ext_value(std::string_view v) {
    const size_t q1 = v.find('\'');
    if (q1 == std::string_view::npos) return std::nullopt;
    const size_t q2 = v.find('\'', q1 + 1);
    if (q2 == std::string_view::npos) return std::nullopt;
    const std::string_view charset = v.substr(0, q1);
    const bool utf8 = iequals(charset, "UTF-8");
    if (!utf8 && !iequals(charset, "ISO-8859-1")) return std::nullopt;
    std::string out;
    for (size_t i = q2 + 1; i < v.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(v[i]);
        if (c == '%') {
            if (v.size() - i < 3) return std::nullopt;
            const int h = hex_digit(v[i + 1]), l = hex_digit(v[i + 2]);
            if (h < 0 || l < 0) return std::nullopt;
            c = static_cast<unsigned char>(h * 16 + l);
            i += 2;
        } else if (c == '\'' || !is_tchar(static_cast<char>(c))) {
            return std::nullopt;
        }
        if (is_ctl(static_cast<char>(c))) return std::nullopt;  // nothing downstream wants NUL or CR in a filename
        if (!utf8 && c >= 0x80) {
            out += static_cast<char>(0xc0 | (c >> 6));
            out += static_cast<char>(0x80 | (c & 0x3f));
        } else {
            out += static_cast<char>(c);
        }
    }
    if (utf8 && !valid_utf8(out)) return std::nullopt;
    return out;
}

// `form-data; name="..."[; filename="..."][; filename*=UTF-8''...]`. Repeated parameters are refused: two parsers
// that pick different copies could disagree about which file this is.
bool parse_disposition(std::string_view value, PartHeaders& part) {
    Lexer lex(value);
    if (!iequals(lex.token(), "form-data")) return false;
    std::optional<std::string> name, filename, filename_ext;
    const bool ok = parse_params(lex, [&](const std::string& param, std::string v) {
        std::optional<std::string>* slot = param == "name"        ? &name
                                           : param == "filename"  ? &filename
                                           : param == "filename*" ? &filename_ext
                                                                  : nullptr;
        if (slot == nullptr) return true;
        if (slot->has_value()) return false;
        if (slot == &filename_ext) {
            auto decoded = decode_ext_value(v);
            if (!decoded) return false;
            v = std::move(*decoded);
        }
        *slot = std::move(v);
        return true;
    });
    if (!ok || !name) return false;  // RFC 7578 section 4.2: the name parameter is mandatory
    part.name = std::move(*name);
    part.filename = filename_ext ? std::move(filename_ext) : std::move(filename);
    return true;
}

// The first CR in [from, end). memchr is very fast over long stretches but costs a call each time; a short plain
// loop first keeps CR-dense data (CRLF-heavy text, or hostile bodies of nothing but CRs) from paying it per byte.
const char* find_cr(const char* from, const char* end) {
    const char* const near_end = end - from > 4 ? from + 4 : end;
    for (const char* p = from; p < near_end; ++p) {
        if (*p == '\r') return p;
    }
    return near_end == end ? nullptr
                           : static_cast<const char*>(std::memchr(near_end, '\r', static_cast<size_t>(end - near_end)));
}

}  // namespace

constexpr std::array<std::string_view, 11> kErrorTexts = {
    "no error",
    "Content-Type is not multipart/form-data with a boundary parameter",
    "invalid multipart boundary or Content-Type parameters",
    "multipart part header line too long",
    "multipart part headers too large",
    "malformed multipart part header",
    "multipart part without a Content-Disposition header",
    "too many parts in multipart body",
    "multipart body ended before the closing boundary",
    "too many bytes before the first multipart boundary",
    "unexpected bytes after a multipart boundary"};
static_assert(names_all(kErrorTexts, Error::junk_after_boundary));

std::string_view describe(Error error) { return name_of(error, kErrorTexts, "unknown multipart error"); }

Result<std::string, Error> boundary_from_content_type(std::string_view content_type) {
    Lexer lex(content_type);
    lex.skip_ows();
    const std::string_view type = lex.token();
    if (!lex.take('/')) return Error::no_boundary;
    const std::string_view subtype = lex.token();
    if (!iequals(type, "multipart") || !iequals(subtype, "form-data")) return Error::no_boundary;
    std::optional<std::string> boundary;
    const bool ok = parse_params(lex, [&](const std::string& name, std::string value) {
        if (name != "boundary") return true;
        if (boundary) return false;  // ambiguous
        boundary = std::move(value);
        return true;
    });
    // A mangled parameter list might be hiding the real boundary, so it is not reported as merely missing.
    if (!ok) return Error::bad_boundary;
    if (!boundary) return Error::no_boundary;
    if (!valid_boundary(*boundary)) return Error::bad_boundary;
    return std::move(*boundary);
}

Parser::Parser(std::string boundary, Callbacks callbacks, Limits limits)
    : delimiter_("\r\n--" + boundary), callbacks_(std::move(callbacks)), limits_(limits), held_(2) {
    // The delimiter search relies on the boundary holding no CR (see consume_data).
    if (!valid_boundary(boundary)) fail(Error::bad_boundary);
}

size_t Parser::buffered() const { return held_ - (virtual_crlf_ ? 2 : 0) + line_.size(); }

bool Parser::fail(Error error) {
    error_ = error;
    held_ = 0;
    virtual_crlf_ = false;
    line_.clear();
    return false;
}

bool Parser::stop() {
    stopped_ = true;
    return false;
}

bool Parser::feed(std::string_view chunk) {
    if (error_ != Error::none || stopped_) return false;
    size_t pos = 0;
    while (pos < chunk.size()) {
        bool ok = true;
        switch (state_) {
            case State::preamble:
            case State::body:
                ok = consume_data(chunk, pos);
                break;
            case State::headers:
                ok = consume_headers(chunk, pos);
                break;
            case State::done:
                return true;  // the epilogue
            default:
                ok = consume_boundary_line(chunk[pos++]);
                break;
        }
        if (!ok) return false;
    }
    return true;
}

bool Parser::finish() {
    if (error_ != Error::none || stopped_) return false;
    return state_ == State::done || fail(Error::truncated);
}

bool Parser::emit(std::string_view bytes) {
    if (bytes.empty()) return true;
    if (state_ == State::preamble) {
        preamble_bytes_ += bytes.size();
        return preamble_bytes_ <= limits_.max_preamble || fail(Error::preamble_too_large);
    }
    return !callbacks_.on_part_data || callbacks_.on_part_data(bytes) || stop();
}

// Part data (or preamble) up to the next "\r\n--boundary". A boundary never contains CR, so CR occurs in the
// delimiter only at its first byte: every occurrence starts at a CR, which memchr finds quickly, and a partial match
// that fails cannot hide another one starting inside it. Hence no KMP tables, and the only bytes ever held back are
// a delimiter prefix at the very end of a chunk.
bool Parser::consume_data(std::string_view chunk, size_t& pos) {
    const std::string_view in = chunk.substr(pos);
    const size_t dlen = delimiter_.size();
    if (held_ > 0) {
        const size_t want = dlen - held_;
        const size_t n = std::min(want, in.size());
        if (std::memcmp(in.data(), delimiter_.data() + held_, n) == 0) {
            pos += n;
            if (n < want) {
                held_ += n;
                return true;
            }
            held_ = 0;
            virtual_crlf_ = false;
            return delimiter_found();
        }
        // Not a delimiter: the held bytes were data, and a delimiter may still start at in[0].
        const size_t skip = virtual_crlf_ ? 2 : 0;
        const std::string_view held(delimiter_.data() + skip, held_ - skip);
        held_ = 0;
        virtual_crlf_ = false;
        if (!emit(held)) return false;
    }
    const char* const begin = in.data();
    const char* const end = begin + in.size();
    for (const char* cur = begin; cur < end;) {
        const char* cr = find_cr(cur, end);
        if (cr == nullptr) break;
        const auto before = static_cast<size_t>(cr - begin);
        const auto avail = static_cast<size_t>(end - cr);
        if (avail >= dlen) {
            // The fixed "\r\n--" first: CRLF-dense data then rarely gets as far as a memcmp call.
            if (cr[1] == '\n' && cr[2] == '-' && cr[3] == '-' && std::memcmp(cr, delimiter_.data(), dlen) == 0) {
                pos += before + dlen;
                return emit(in.substr(0, before)) && delimiter_found();
            }
        } else if (std::memcmp(cr, delimiter_.data(), avail) == 0) {
            pos = chunk.size();
            held_ = avail;
            return emit(in.substr(0, before));
        }
        cur = cr + 1;
    }
    pos = chunk.size();
    return emit(in);
}

bool Parser::delimiter_found() {
    const bool in_part = state_ == State::body;
    state_ = State::after_boundary;
    return !in_part || !callbacks_.on_part_end || callbacks_.on_part_end() || stop();
}

// After "--boundary": "--" closes the body; otherwise optional transport padding and CRLF open a part. Anything
// else means the boundary text appeared inside the data, which RFC 2046 forbids; that is an error, not data.
bool Parser::consume_boundary_line(char c) {
    switch (state_) {
        case State::after_boundary:
            if (c == '-') {
                state_ = State::close_dash;
                return true;
            }
            [[fallthrough]];
        case State::padding:
            if (c == ' ' || c == '\t') {
                state_ = State::padding;
                return true;
            }
            if (c == '\r') {
                state_ = State::boundary_cr;
                return true;
            }
            return fail(Error::junk_after_boundary);
        case State::boundary_cr:
            if (c != '\n') return fail(Error::junk_after_boundary);
            if (parts_ >= limits_.max_parts) return fail(Error::too_many_parts);
            state_ = State::headers;
            headers_bytes_ = 0;
            part_ = PartHeaders{};
            return true;
        case State::close_dash:
            if (c != '-') return fail(Error::junk_after_boundary);
            state_ = State::done;
            return true;
        default:
            return true;  // unreachable: feed() dispatches only the states above here
    }
}

bool Parser::consume_headers(std::string_view chunk, size_t& pos) {
    const std::string_view in = chunk.substr(pos);
    const char* nl = static_cast<const char*>(std::memchr(in.data(), '\n', in.size()));
    const size_t take = nl != nullptr ? static_cast<size_t>(nl - in.data()) : in.size();
    // - 1: the line's CR may sit in line_ while its LF is still to come. (Not max + 1, which overflows at SIZE_MAX.)
    const size_t len = line_.size() + take;
    if (len > 0 && len - 1 > limits_.max_header_line) return fail(Error::header_line_too_long);
    line_.append(in.data(), take);
    if (nl == nullptr) {
        pos = chunk.size();
        return true;
    }
    pos += take + 1;
    return end_header_line();
}

bool Parser::end_header_line() {
    if (line_.empty() || line_.back() != '\r') return fail(Error::malformed_header);  // bare LF
    line_.pop_back();
    if (line_.empty()) return end_headers();
    headers_bytes_ += line_.size() + 2;
    if (headers_bytes_ > limits_.max_headers_bytes) return fail(Error::headers_too_large);
    // Obsolete line folding (a leading space, RFC 9112 section 5.2) fails the name check below, as do spaces before
    // the colon.
    const size_t colon = line_.find(':');
    if (colon == 0 || colon == std::string::npos) return fail(Error::malformed_header);
    const std::string_view line(line_);
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim(line.substr(colon + 1));
    if (!std::all_of(name.begin(), name.end(), is_tchar)) return fail(Error::malformed_header);
    // Bytes >= 0x80 stay: browsers put raw UTF-8 filenames in quoted strings.
    if (std::any_of(value.begin(), value.end(), [](char c) { return c != '\t' && is_ctl(c); })) {
        return fail(Error::malformed_header);
    }
    part_.raw.emplace_back(lower(name), std::string(value));
    line_.clear();
    return true;
}

bool Parser::end_headers() {
    const std::string* disposition = nullptr;
    const std::string* type = nullptr;
    for (const auto& [name, value] : part_.raw) {
        const std::string** slot = name == "content-disposition" ? &disposition
                                   : name == "content-type"      ? &type
                                                                 : nullptr;
        if (slot == nullptr) continue;
        if (*slot != nullptr) return fail(Error::malformed_header);  // repeated: ambiguous
        *slot = &value;
    }
    if (disposition == nullptr) return fail(Error::missing_content_disposition);
    if (!parse_disposition(*disposition, part_)) return fail(Error::malformed_header);
    if (type != nullptr && type->empty()) return fail(Error::malformed_header);
    part_.content_type = type != nullptr ? *type : "text/plain";
    ++parts_;
    state_ = State::body;
    held_ = 0;
    return !callbacks_.on_part_begin || callbacks_.on_part_begin(part_) || stop();
}

}  // namespace mp3c::multipart
