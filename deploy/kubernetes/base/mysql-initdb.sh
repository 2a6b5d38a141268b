# Sourced by the MariaDB image's docker-entrypoint.sh on the first start only (an empty data volume), while a
# temporary server runs without networking. One database and one user per service, each user with the rights its
# service needs on its own database only (the services create and migrate their tables themselves) and nothing
# else: no global privileges, no GRANT OPTION. The passwords are read from the mounted Secret.
# (Not executable on purpose: sourced, it can use the entrypoint's docker_process_sql.)

mp3c_database() { # DATABASE USER SECRET_FILE
	local password
	password="$(< "/run/secrets/mp3converter/$3")"
	if [ -z "$password" ]; then
		mysql_error "mp3converter: the password of $2 ($3) is empty: fill it in secrets.env"
	fi
	# escaped for a single-quoted SQL string: \ and '
	password=${password//\\/\\\\}
	password=${password//\'/\'\'}
	mysql_note "mp3converter: database $1, user $2"
	docker_process_sql --database=mysql <<-SQL
		CREATE DATABASE IF NOT EXISTS \`$1\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
		CREATE USER IF NOT EXISTS '$2'@'%' IDENTIFIED BY '$password';
		ALTER USER '$2'@'%' IDENTIFIED BY '$password';
		GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, REFERENCES ON \`$1\`.* TO '$2'@'%';
	SQL
}

mp3c_database auth auth_user mysql-auth-password
mp3c_database gateway gateway_user mysql-gateway-password
mp3c_database notification notification_user mysql-notification-password
unset -f mp3c_database
