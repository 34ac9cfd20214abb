# Turns the message of GET /faas/v1/environment ({"handler": "...", "env": {"NAME": "value"}})
# into `export NAME='value'` lines for sh's eval, with the JSON strings decoded (\uXXXX to
# UTF-8, surrogate pairs joined) and single quotes kept inside the quoting.
#
# Why awk and not jq: mawk is in every Debian root filesystem and starts in about a
# millisecond; jq 1.6 spends about 30 ms compiling its builtins, on every cold start.
# Run it as `LC_ALL=C awk -f env.awk`: %c must print bytes, not characters.

{ text = text $0 "\n" }

END {
    if (failed) exit 1
    n = length(text)
    pos = 1
    expect("{")
    if (peek() == "}") exit 0
    do {
        key = read_string()
        expect(":")
        if (key == "env" && peek() == "{") read_env()
        else skip_value()
        c = peek()
        pos++
    } while (c == ",")
    if (c != "}") die("expected } after the last member")
}

function die(message) {
    printf "faas runtime: bad environment message: %s (at character %d)\n", message, pos > "/dev/stderr"
    failed = 1
    exit 1
}

function peek() {
    while (pos <= n && index(" \t\r\n", substr(text, pos, 1))) pos++
    return substr(text, pos, 1)
}

function expect(ch) {
    if (peek() != ch) die("expected " ch)
    pos++
}

function hex4(h,    i, d, v) {
    v = 0
    for (i = 1; i <= 4; i++) {
        d = index("0123456789abcdef", tolower(substr(h, i, 1)))
        if (!d) die("bad \\u escape")
        v = v * 16 + d - 1
    }
    return v
}

function utf8(cp) {
    if (cp < 128) return sprintf("%c", cp)
    if (cp < 2048) return sprintf("%c%c", 192 + int(cp / 64), 128 + cp % 64)
    if (cp < 65536) return sprintf("%c%c%c", 224 + int(cp / 4096), 128 + int(cp / 64) % 64, 128 + cp % 64)
    return sprintf("%c%c%c%c", 240 + int(cp / 262144), 128 + int(cp / 4096) % 64, 128 + int(cp / 64) % 64, 128 + cp % 64)
}

function read_string(    out, ch, cp, low) {
    if (peek() != "\"") die("expected a string")
    pos++
    out = ""
    while (pos <= n) {
        ch = substr(text, pos, 1)
        pos++
        if (ch == "\"") return out
        if (ch != "\\") {
            out = out ch
            continue
        }
        ch = substr(text, pos, 1)
        pos++
        if (ch == "n") out = out "\n"
        else if (ch == "t") out = out "\t"
        else if (ch == "r") out = out "\r"
        else if (ch == "b") out = out "\b"
        else if (ch == "f") out = out "\f"
        else if (ch == "u") {
            cp = hex4(substr(text, pos, 4))
            pos += 4
            if (cp >= 55296 && cp < 56320 && substr(text, pos, 2) == "\\u") {
                low = hex4(substr(text, pos + 2, 4))
                if (low >= 56320 && low < 57344) {
                    cp = 65536 + (cp - 55296) * 1024 + (low - 56320)
                    pos += 6
                }
            }
            if (cp > 0) out = out utf8(cp)  # a NUL cannot be in a variable: dropped
        } else out = out ch  # \" \\ \/
    }
    die("unterminated string")
}

function skip_value(    ch, close_ch) {
    ch = peek()
    if (ch == "\"") {
        read_string()
        return
    }
    if (ch == "{" || ch == "[") {
        pos++
        if (peek() == (ch == "{" ? "}" : "]")) {
            pos++
            return
        }
        do {
            if (ch == "{") {
                read_string()
                expect(":")
            }
            skip_value()
            close_ch = peek()
            pos++
        } while (close_ch == ",")
        if (close_ch != (ch == "{" ? "}" : "]")) die("unbalanced " ch)
        return
    }
    while (pos <= n && index(",}] \t\r\n", substr(text, pos, 1)) == 0) pos++  # number, true, false, null
}

function quote(s,    out, i) {
    out = ""
    while ((i = index(s, "'")) > 0) {
        out = out substr(s, 1, i - 1) "'\"'\"'"
        s = substr(s, i + 1)
    }
    return "'" out s "'"
}

function read_env(    name, value, start, ch) {
    expect("{")
    if (peek() == "}") {
        pos++
        return
    }
    do {
        name = read_string()
        expect(":")
        if (peek() == "\"") value = read_string()
        else {
            start = pos
            skip_value()
            value = substr(text, start, pos - start)
        }
        if (name ~ /^[A-Za-z_][A-Za-z0-9_]*$/) print "export " name "=" quote(value)
        ch = peek()
        pos++
    } while (ch == ",")
    if (ch != "}") die("expected } after the last variable")
}
