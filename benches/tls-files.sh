# Sourced by smoke.sh and h3.sh (not run by itself): make_tls_files DIR [NAMES]
# writes a throwaway CA (DIR/ca.pem) and a certificate it signs for
# NAMES, subjectAltName entries (default DNS:localhost,IP:127.0.0.1)
# (DIR/server.pem, DIR/server.key), with openssl; what openssl says goes
# to DIR/openssl.log, shown on failure. conformance/netfault makes its
# Redis servers' certificates with it too.
make_tls_files() {
    command -v openssl >/dev/null || { echo "openssl is needed for the TLS runs"; return 1; }
    local d=$1 names=${2:-DNS:localhost,IP:127.0.0.1}
    mkdir -p "$d"
    {
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
            -subj /CN=tether-bench-ca -keyout "$d/ca.key" -out "$d/ca.pem" &&
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
                -keyout "$d/server.key" -out "$d/server.csr" &&
            printf '%s\n' "subjectAltName=$names" 'basicConstraints=CA:FALSE' \
                'keyUsage=digitalSignature' 'extendedKeyUsage=serverAuth,clientAuth' >"$d/ext.cnf" &&
            openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
                -days 2 -extfile "$d/ext.cnf" -out "$d/server.pem"
    } >"$d/openssl.log" 2>&1 || { cat "$d/openssl.log"; return 1; }
}
