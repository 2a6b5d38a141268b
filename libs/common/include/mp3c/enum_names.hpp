#pragma once

#include <array>
#include <cstddef>
#include <string_view>

namespace mp3c {

// The name of an enumerator, from a table of names in declaration order (the enums named this way count from 0
// without gaps). Next to each table a static_assert ties its size to the enum's last enumerator, so that an
// enumerator added without a name stops the build, as a switch without a case would warn.
template <class Enum, size_t N>
constexpr std::string_view name_of(Enum value, const std::array<std::string_view, N>& names, std::string_view unknown) {
    auto index = static_cast<size_t>(value);
    return index < N ? names[index] : unknown;
}

// Whether a table names every enumerator up to and including `last`.
template <class Enum, size_t N>
constexpr bool names_all(const std::array<std::string_view, N>&, Enum last) {
    return N == static_cast<size_t>(last) + 1;
}

}  // namespace mp3c
