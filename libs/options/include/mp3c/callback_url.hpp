#pragma once

#include <string>

namespace mp3c {

// A job's webhook address as given at upload (the gateway checks it, the notification service checks it again before
// calling): http or https, a host, no user name or password (they would end up in logs), at most 2000 characters.
// Returns the problem in words, or an empty string. Which addresses may be called is decided at delivery time.
std::string callback_url_problem(const std::string& url);

}  // namespace mp3c
