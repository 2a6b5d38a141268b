#pragma once

#include <initializer_list>
#include <string>
#include <vector>

#include "mp3c/http.hpp"
#include "mp3c/result.hpp"

namespace mp3c::auth {

// The string fields of a JSON object body, in the order named, or the 400 to answer: `invalid_json` for a body that
// is not a JSON object, `invalid_<field>` for a field that is missing or not a string.
Result<std::vector<std::string>, http::Response> string_fields(const http::Request& request,
                                                               std::initializer_list<const char*> names);

}  // namespace mp3c::auth
