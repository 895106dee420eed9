#!/usr/bin/env bash
# Writes src/frontend/gate/encodings.rs: how PostgreSQL converts each byte
# 0x80-0xFF of every single-byte client encoding to Unicode, as the server
# itself answers (convert_from), so airlock reads identifiers exactly as
# the server will. Needs a running server: scripts/gen-encodings.sh CONNINFO
set -euo pipefail
conninfo="$1"
out="$(dirname "$0")/../src/frontend/gate/encodings.rs"
encodings="LATIN1 LATIN2 LATIN3 LATIN4 LATIN5 LATIN6 LATIN7 LATIN8 LATIN9 LATIN10 ISO_8859_5 ISO_8859_6 ISO_8859_7 ISO_8859_8 WIN866 WIN874 WIN1250 WIN1251 WIN1252 WIN1253 WIN1254 WIN1255 WIN1256 WIN1257 WIN1258 KOI8R KOI8U"
{
  echo "//! How PostgreSQL converts the bytes 0x80-0xFF of each single-byte"
  echo "//! encoding to Unicode (0: no equivalent, which the server refuses with"
  echo "//! 22P05). Generated from the server's own conversions by"
  echo "//! scripts/gen-encodings.sh; do not edit."
  echo
  echo "pub(super) static SINGLE_BYTE: &[(&str, [u16; 128])] = &["
  for e in $encodings; do
    echo "    (\"$e\", ["
    psql "$conninfo" -X -At -q -c "
      CREATE OR REPLACE FUNCTION pg_temp.cp(b int, e text) RETURNS int LANGUAGE plpgsql AS \$\$
      BEGIN RETURN ascii(convert_from(decode(lpad(to_hex(b), 2, '0'), 'hex'), e));
      EXCEPTION WHEN others THEN RETURN 0; END \$\$;
      SELECT string_agg(pg_temp.cp(b, '$e')::text, ', ' ORDER BY b) FROM generate_series(128, 255) b" \
      | fold -s -w 90 | sed 's/^/        /; s/ *$//'
    echo "    ]),"
  done
  echo "];"
} > "$out"
