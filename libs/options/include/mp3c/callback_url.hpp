#pragma once

#include <string>

#include "mp3c/result.hpp"

namespace mp3c {

// A job's webhook address as given at upload (the gateway checks it, the notification service checks it again before
// calling): http or https, a host, no user name or password (they would end up in logs), at most 2000 characters.
// Ok, or the problem in words. Which addresses may be called is decided at delivery time.
Check check_callback_url(const std::string& url);

}  // namespace mp3c
