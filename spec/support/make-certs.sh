#!/usr/bin/env bash
# make-certs.sh DIR: writes throwaway TLS material for the tests into DIR.
#   ca.pem, ca.key               test CA (signs everything below)
#   server.pem, server.key       DNS:localhost, IP:127.0.0.1
#   wronghost.pem, wronghost.key DNS:wrong.example only (hostname mismatch)
#   client.pem, client.key       client certificate (extendedKeyUsage clientAuth)
#   other-ca.pem, other-ca.key   a second, self-signed CA that signed nothing we serve
#   capath/                      ca.pem plus its OpenSSL hash link (<hash>.0), a CA path
# EC P-256 keys, valid for 2 days. Silent unless something fails.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$1
mkdir -p "$dir/capath"
cd "$dir"
log=$(mktemp) cnf=$(mktemp)
trap 'rm -f "$log" "$cnf" ./*.csr' EXIT
fail() { echo "make-certs.sh: openssl failed:" >&2; cat "$log" >&2; exit 1; }

cat >"$cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
[wronghost]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:wrong.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
EOF

newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)

# self-signed CAs
selfsigned() { # name CN
  openssl req -x509 -config "$cnf" -extensions ca "${newkey[@]}" \
    -keyout "$1.key" -out "$1.pem" -subj "/CN=$2" -days 2 -set_serial 1 >>"$log" 2>&1 || fail
}
# leaf certificates signed by ca.pem
leaf() { # name CN extensions-section serial
  openssl req -new -config "$cnf" "${newkey[@]}" \
    -keyout "$1.key" -out "$1.csr" -subj "/CN=$2" >>"$log" 2>&1 || fail
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -set_serial "$4" -days 2 \
    -extfile "$cnf" -extensions "$3" -out "$1.pem" >>"$log" 2>&1 || fail
}

selfsigned ca "tfauth test CA"
selfsigned other-ca "tfauth other CA (trusted by nobody)"
leaf server localhost server 2
leaf wronghost wrong.example wronghost 3
leaf client "tfauth test client" client 4
chmod 600 ./*.key

cp ca.pem capath/ca.pem
hash=$(openssl x509 -hash -noout -in ca.pem 2>>"$log") || fail
ln -sf ca.pem "capath/$hash.0"
