#pragma once

// MariaDB's settings (every service with a database): read by mysql::options_from_env. The names are the original's.
#include "mp3c/config.hpp"

namespace mp3c::mysql::settings {

using config::Kind;
using config::Setting;

inline constexpr Setting kHost{
    .name = "MYSQL_HOST", .kind = Kind::text, .fallback = "127.0.0.1", .help = "Server host name or address."};
inline constexpr Setting kPort{.name = "MYSQL_PORT", .kind = Kind::port, .fallback = "3306", .help = "Server port."};
inline constexpr Setting kUser{.name = "MYSQL_USER", .kind = Kind::text, .help = "User name.", .required = true};
inline constexpr Setting kPassword{
    .name = "MYSQL_PASSWORD", .kind = Kind::secret, .help = "Password (a secret: directly or from a file)."};
inline constexpr Setting kDatabase{
    .name = "MYSQL_DB",
    .kind = Kind::text,
    .help = "Database name.",
    .shown_default = "service's own (auth: `auth`, gateway: `gateway`, notification: `notification`)"};
inline constexpr Setting kPoolSize{.name = "MYSQL_POOL_SIZE",
                                   .kind = Kind::integer,
                                   .fallback = "8",
                                   .help = "Most connections the pool opens,",
                                   .min = 1,
                                   .max = 256};
inline constexpr Setting kConnectTimeout{.name = "MYSQL_CONNECT_TIMEOUT",
                                         .kind = Kind::duration,
                                         .fallback = "5s",
                                         .help = "Connect timeout, used in whole seconds.",
                                         .min = 1000};
inline constexpr Setting kQueryTimeout{.name = "MYSQL_QUERY_TIMEOUT",
                                       .kind = Kind::duration,
                                       .fallback = "30s",
                                       .help = "Read and write timeout for each statement, used in whole seconds.",
                                       .min = 1000};

inline constexpr Setting kAll[] = {kHost,     kPort,     kUser,           kPassword,
                                   kDatabase, kPoolSize, kConnectTimeout, kQueryTimeout};

}  // namespace mp3c::mysql::settings
