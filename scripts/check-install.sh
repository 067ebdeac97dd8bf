#!/usr/bin/env bash
# CI check of the make-driven path: install into a temporary prefix, find it with pkg-config,
# build and run the plain-make consumer (shared and static), uninstall, and check that the
# prefix is empty again. Also builds and runs the SwiftPM consumer.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=$(mktemp -d /tmp/mmapkit-prefix-XXXXXX)
trap 'rm -rf "$prefix"' EXIT

make install PREFIX="$prefix"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
pkg-config --exists mmapkit
echo "pkg-config: $(pkg-config --cflags --libs mmapkit)"

expected="mapped 4096 bytes, byte sum 522240"
make -C Examples/make-consumer clean consumer
output=$(Examples/make-consumer/consumer)
echo "make-consumer (shared): $output"
[ "$output" = "$expected" ] || { echo "expected: $expected" >&2; exit 1; }
# Not `ldd | grep -q`: grep -q exits at the first match, ldd may then die of SIGPIPE, and
# pipefail turns that into a failure now and then (seen in CI).
libraries=$(ldd Examples/make-consumer/consumer)
grep -q "$prefix/lib/libMmapKit.so" <<<"$libraries"

swiftc -O -swift-version 6 Examples/make-consumer/main.swift -I "$prefix/lib/swift/MmapKit" \
    "$prefix/lib/libMmapKit.a" -o Examples/make-consumer/consumer-static
output=$(Examples/make-consumer/consumer-static)
echo "make-consumer (static): $output"
[ "$output" = "$expected" ] || { echo "expected: $expected" >&2; exit 1; }
rm -f Examples/make-consumer/consumer Examples/make-consumer/consumer-static

make uninstall PREFIX="$prefix"
left=$(find "$prefix" -mindepth 1)
[ -z "$left" ] || { echo "uninstall left files behind:" >&2; echo "$left" >&2; exit 1; }
echo "uninstall: $prefix is empty"

output=$(swift run --package-path Examples/swiftpm-consumer -c release Consumer 2>/dev/null | tail -1)
echo "swiftpm-consumer: $output"
[ "$output" = "views of 32768 and 32768 bytes; last byte 255" ] || exit 1
