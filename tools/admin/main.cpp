// mp3converter-admin: manages users in the auth database (MYSQL_* environment, as the auth service).
// Passwords are read from standard input or a terminal prompt, never from the command line (it would show in `ps`
// and in shell history).
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "auth_app.hpp"
#include "auth_config.hpp"
#include "credentials.hpp"
#include "mp3c/config.hpp"
#include "mp3c/crypto.hpp"
#include "mp3c/log.hpp"
#include "mp3c/mysql.hpp"
#include "user_store.hpp"

namespace {

using namespace mp3c;

constexpr const char* kUsage = R"(usage: mp3converter-admin user <command> [options]

commands:
  user add --email E [--admin]          create a user; the password is read from standard input
                                        (or prompted for twice on a terminal)
  user list [--json]                    list users
  user delete --email E                 delete a user (their tokens stop working within seconds)
  user set-password --email E           replace a user's password (read like 'add'); ends their tokens
  user set-role --email E --role R      R is 'user' or 'admin'

environment: MYSQL_HOST, MYSQL_PORT, MYSQL_USER, MYSQL_PASSWORD (or MYSQL_PASSWORD_FILE), MYSQL_DB (default auth),
             PASSWORD_HASH_OPS, PASSWORD_HASH_MEMORY (argon2id cost, as the auth service)
exit codes: 0 done, 1 refused (exists, not found, invalid input), 2 usage or configuration error, 3 database or other error
)";

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct Args {
    std::string command;
    std::map<std::string, std::string> options;
    bool flag(const std::string& name) const { return options.count(name) > 0; }
    std::string require(const std::string& name) const {
        auto it = options.find(name);
        if (it == options.end() || it->second.empty()) throw UsageError("missing --" + name);
        return it->second;
    }
};

Args parse(int argc, char** argv) {
    if (argc < 3 || std::string(argv[1]) != "user") throw UsageError("expected 'user <command>'");
    Args args;
    args.command = argv[2];
    static const std::map<std::string, bool> kTakesValue = {
        {"email", true}, {"role", true}, {"admin", false}, {"json", false}};
    for (int i = 3; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg.rfind("--", 0) != 0) throw UsageError("unexpected argument '" + arg + "'");
        std::string name = arg.substr(2), value;
        if (auto eq = name.find('='); eq != std::string::npos) {
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
        }
        auto known = kTakesValue.find(name);
        if (known == kTakesValue.end()) throw UsageError("unknown option --" + name);
        if (known->second && value.empty()) {
            if (i + 1 >= argc) throw UsageError("--" + name + " needs a value");
            value = argv[++i];
        }
        args.options[name] = value;
    }
    return args;
}

std::string read_line_from(std::istream& in) {
    std::string line;
    std::getline(in, line);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
}

std::string prompt_hidden(const char* prompt) {
    std::fprintf(stderr, "%s", prompt);
    termios old{};
    tcgetattr(STDIN_FILENO, &old);
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    std::string line = read_line_from(std::cin);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    std::fprintf(stderr, "\n");
    return line;
}

std::string read_password() {
    std::string password;
    if (isatty(STDIN_FILENO)) {
        password = prompt_hidden("Password: ");
        if (prompt_hidden("Repeat password: ") != password) throw std::invalid_argument("the passwords differ");
    } else {
        password = read_line_from(std::cin);
    }
    if (auto ok = auth::check_password(password); !ok) throw std::invalid_argument(ok.error());
    return password;
}

std::string checked_email(const Args& args) {
    std::string email = auth::normalize_email(args.require("email"));
    if (auto ok = auth::check_email(email); !ok) throw std::invalid_argument(ok.error());
    return email;
}

int run(const Args& args) {
    // Usage errors first: a mistyped command should not wait for a database.
    static const std::map<std::string, std::vector<std::string>> kRequired = {{"add", {"email"}},
                                                                              {"list", {}},
                                                                              {"delete", {"email"}},
                                                                              {"set-password", {"email"}},
                                                                              {"set-role", {"email", "role"}}};
    auto required = kRequired.find(args.command);
    if (required == kRequired.end()) throw UsageError("unknown command '" + args.command + "'");
    for (const auto& name : required->second) args.require(name);
    if (args.flag("role") && !auth::parse_role(args.require("role")))
        throw UsageError("--role must be 'user' or 'admin'");

    config::Env env;
    auto options = mysql::options_from_env(env, "auth");
    auto cost = auth::password_cost_from_env(env);
    env.check();
    options.pool_size = 1;
    mysql::Pool pool(options);
    mysql::migrate(pool, auth::AuthApp::migrations());
    auth::UserStore users(pool);
    crypto::PasswordHasher hasher(cost);

    if (args.command == "add") {
        std::string email = checked_email(args);
        std::string password = read_password();
        auto role = args.flag("admin") ? auth::Role::admin : auth::Role::user;
        auto created = users.create(email, hasher.hash(password), role);
        if (!created.ok()) {
            std::fprintf(stderr, "mp3converter-admin: a user with e-mail %s already exists\n", email.c_str());
            return 1;
        }
        std::printf("created %s %s (id %lld)\n", auth::to_string(role).c_str(), email.c_str(),
                    static_cast<long long>(created.value().id));
        return 0;
    }
    if (args.command == "list") {
        auto all = users.list();
        if (args.flag("json")) {
            nlohmann::json out = nlohmann::json::array();
            for (const auto& u : all) {
                out.push_back({{"id", u.id},
                               {"email", u.email},
                               {"role", auth::to_string(u.role)},
                               {"created_at", u.created_at},
                               {"last_login_at", u.last_login_at ? nlohmann::json(*u.last_login_at) : nullptr}});
            }
            std::printf("%s\n", out.dump(2).c_str());
            return 0;
        }
        std::printf("%-6s %-6s %-21s %-21s %s\n", "ID", "ROLE", "CREATED", "LAST LOGIN", "EMAIL");
        for (const auto& u : all) {
            std::printf("%-6lld %-6s %-21s %-21s %s\n", static_cast<long long>(u.id), auth::to_string(u.role).c_str(),
                        u.created_at.c_str(), u.last_login_at.value_or("-").c_str(), u.email.c_str());
        }
        return 0;
    }
    if (args.command == "delete") {
        std::string email = auth::normalize_email(args.require("email"));
        if (!users.remove(email)) {
            std::fprintf(stderr, "mp3converter-admin: no user with e-mail %s\n", email.c_str());
            return 1;
        }
        std::printf("deleted %s\n", email.c_str());
        return 0;
    }
    if (args.command == "set-password") {
        std::string email = auth::normalize_email(args.require("email"));
        if (!users.find_by_email(email)) {
            std::fprintf(stderr, "mp3converter-admin: no user with e-mail %s\n", email.c_str());
            return 1;
        }
        users.set_password_hash(email, hasher.hash(read_password()));
        std::printf("password changed for %s\n", email.c_str());
        return 0;
    }
    if (args.command == "set-role") {
        std::string email = auth::normalize_email(args.require("email"));
        auto role = auth::parse_role(args.require("role"));
        if (!role) throw UsageError("--role must be 'user' or 'admin'");
        if (!users.set_role(email, *role)) {
            std::fprintf(stderr, "mp3converter-admin: no user with e-mail %s\n", email.c_str());
            return 1;
        }
        std::printf("%s is now %s\n", email.c_str(), auth::to_string(*role).c_str());
        return 0;
    }
    throw UsageError("unknown command '" + args.command + "'");
}

}  // namespace

int main(int argc, char** argv) {
    mp3c::log::init("mp3converter-admin", mp3c::log::Level::warn);
    try {
        return run(parse(argc, argv));
    } catch (const UsageError& e) {
        std::fprintf(stderr, "mp3converter-admin: %s\n\n%s", e.what(), kUsage);
        return 2;
    } catch (const mp3c::config::Error& e) {
        std::fprintf(stderr, "mp3converter-admin: %s\n", e.what());
        return 2;
    } catch (const std::invalid_argument& e) {
        std::fprintf(stderr, "mp3converter-admin: %s\n", e.what());
        return 1;
    } catch (const mp3c::mysql::Error& e) {
        std::fprintf(stderr, "mp3converter-admin: database error: %s\n", e.what());
        return 3;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "mp3converter-admin: %s\n", e.what());
        return 3;
    }
}
