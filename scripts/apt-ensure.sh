# Sourced by the scripts: `apt_ensure COMMAND:PACKAGE ...` installs, with
# apt-get (as root, or through sudo), the Debian package of every command
# that is not on PATH.
apt_ensure() {
    local missing=() pair
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    echo "installing ${missing[*]} with apt-get"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}
