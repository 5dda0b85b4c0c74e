#!/bin/sh
# Generate a throw-away TLS setup for trying and testing rcluster:
#   ca.crt/ca.key              the test CA
#   node.crt/node.key          a node certificate (server + client use, as the
#                              cluster bus needs both); SAN 127.0.0.1, ::1, localhost
#   client.crt/client.key      a client certificate signed by the test CA
#   other-ca.crt/other-ca.key  a second, unrelated CA
#   other-client.crt/.key      a client certificate signed by the OTHER CA
#                              (a client every node must refuse)
# Usage: etc/tls/gen-certs.sh [dir]      (default: ./tls)
# Never use these certificates in production.
set -eu

dir=${1:-tls}
days=${DAYS:-3650}
mkdir -p "$dir"
cd "$dir"

make_key() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null
    chmod 600 "$1.key"
}

make_ca() {    # name, common name
    make_key "$1"
    openssl req -x509 -new -sha256 -key "$1.key" -days "$days" \
        -subj "/O=rcluster test/CN=$2" -out "$1.crt" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign"
}

make_cert() {  # name, common name, signing CA, extensions
    make_key "$1"
    printf '%s\n' "$4" > "$1.ext"
    openssl req -new -sha256 -key "$1.key" -subj "/O=rcluster test/CN=$2" |
        openssl x509 -req -sha256 -days "$days" -CA "$3.crt" -CAkey "$3.key" \
            -CAcreateserial -CAserial "$3.srl" -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    rm -f "$1.ext"
}

leaf="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature"

make_ca ca "rcluster test CA"
make_cert node "rcluster node" ca "$leaf
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost"
make_cert client "rcluster client" ca "$leaf
extendedKeyUsage=clientAuth"
make_ca other-ca "another CA"
make_cert other-client "rcluster client (other CA)" other-ca "$leaf
extendedKeyUsage=clientAuth"

echo "certificates written to $(pwd)"
