#include "request_body.hpp"

#include <nlohmann/json.hpp>

namespace mp3c::auth {

Result<std::vector<std::string>, http::Response> string_fields(const http::Request& request,
                                                               std::initializer_list<const char*> names) {
    auto body = nlohmann::json::parse(request.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
        std::string shape;
        for (const char* name : names) shape += std::string(shape.empty() ? "" : ", ") + "\"" + name + "\"";
        return http::Response::error(400, "invalid_json", "the body must be a JSON object {" + shape + "}");
    }
    std::vector<std::string> values;
    for (const char* name : names) {
        auto it = body.find(name);
        if (it == body.end() || !it->is_string()) {
            return http::Response::error(400, std::string("invalid_") + name,
                                         "\"" + std::string(name) + "\" is required and must be a string");
        }
        values.push_back(it->get<std::string>());
    }
    return values;
}

}  // namespace mp3c::auth
