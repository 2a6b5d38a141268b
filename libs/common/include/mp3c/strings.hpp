#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace mp3c {

std::string_view trim(std::string_view s);
bool iequals(std::string_view a, std::string_view b);
std::string to_lower_ascii(std::string_view s);
std::vector<std::string_view> split(std::string_view s, char separator);
// True when every byte is printable ASCII (no control characters, no DEL, nothing above 0x7e).
bool is_printable_ascii(std::string_view s);
// True when s is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool is_valid_utf8(std::string_view s);
// At most max_bytes of s, never ending inside a UTF-8 character (for columns and fields of a bounded length).
std::string_view utf8_prefix(std::string_view s, size_t max_bytes);
// The time in UTC through strftime's format ("%Y-%m-%dT%H:%M:%SZ": RFC 3339), to the second.
std::string format_utc(std::chrono::system_clock::time_point t, const char* format);
// A length as a clock shows it: "1:05:09", "3:07", "0:02" (to the nearest second; negative or not finite: "0:00").
std::string clock_duration(double seconds);

}  // namespace mp3c
