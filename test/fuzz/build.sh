#!/bin/sh
# build.sh [PG_CONFIG] -- build the libFuzzer harnesses into test/fuzz/bin/
# with clang (Debian's clang package, which scripts/common.sh's
# ensure_dependencies installs; nothing is installed here), ASan and UBSan.
# Links PostgreSQL's frontend libpgcommon.
set -e
cd "$(dirname "$0")"
PG_CONFIG=${1:-${PG_CONFIG:-pg_config}}
if ! command -v clang >/dev/null 2>&1; then
	echo "clang is missing: run scripts/test.sh's set-up (ensure_dependencies) or apt-get install clang" >&2
	exit 77
fi
inc=$($PG_CONFIG --includedir-server)
lib=$($PG_CONFIG --pkglibdir)
[ -f "$lib/libpgcommon.a" ] || lib=$($PG_CONFIG --libdir)
mkdir -p bin
flags="-Wno-ignored-attributes -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -DFRONTEND -I$inc -I../../src -I../../src/util"
for h in webhook responses; do
	extra=""
	[ $h = webhook ] && extra="../../src/util/signature.c"
	clang $flags -o bin/fuzz_$h fuzz_$h.c ../../src/util/parse_util.c $extra \
		"$lib/libpgcommon.a" "$lib/libpgport.a" -lcrypto -lm
done
echo "built: $(ls bin | tr '\n' ' ')"
