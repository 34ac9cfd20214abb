# The handler: prints the response (JSON) for the event in $1.
handler() {
    name=$(printf '%s' "$1" | sed -n 's/.*"name" *: *"\([^"]*\)".*/\1/p')
    echo "greeting ${name:-world}" >&2
    printf '{"message": "%s, %s!"}' "$GREETING" "${name:-world}"
}
