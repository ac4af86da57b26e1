# make_certs DIR [OCSP_URL]: a throwaway CA and a server certificate for
# localhost, 127.0.0.1 and ::1 (ca.pem, cert.pem, key.pem). For tests and the
# demo only; production uses a certificate from a public CA (spec 3.5).
# With OCSP_URL the certificate names that OCSP responder, cert.pem carries
# the CA after the server certificate (what stapling needs), and index.txt is
# the status database for `openssl ocsp -index` (the certificate is valid).
make_certs() {
  local dir=$1 ocsp_url=${2:-}
  mkdir -p "$dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=ts-callbackd test CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=localhost" -keyout "$dir/key.pem" -out "$dir/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nbasicConstraints=CA:FALSE\n' >"$dir/ext.cnf"
  printf 'keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' >>"$dir/ext.cnf"
  [ -n "$ocsp_url" ] && printf 'authorityInfoAccess=OCSP;URI:%s\n' "$ocsp_url" >>"$dir/ext.cnf"
  # 365 days: under the 398 browsers and testssl accept for a server certificate.
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 365 -extfile "$dir/ext.cnf" -out "$dir/cert.pem" 2>/dev/null
  if [ -n "$ocsp_url" ]; then
    local end serial subject
    end=$(openssl x509 -in "$dir/cert.pem" -noout -enddate | cut -d= -f2)
    serial=$(openssl x509 -in "$dir/cert.pem" -noout -serial | cut -d= -f2)
    subject=$(openssl x509 -in "$dir/cert.pem" -noout -subject -nameopt compat | cut -d= -f2-)
    printf 'V\t%s\t\t%s\tunknown\t%s\n' "$(date -u -d "$end" +%y%m%d%H%M%SZ)" "$serial" "$subject" \
      >"$dir/index.txt"
    cat "$dir/ca.pem" >>"$dir/cert.pem"
  fi
  rm -f "$dir/server.csr" "$dir/ext.cnf" "$dir/ca.srl"
}
