#!/usr/bin/env bash
# CI check of the make-driven path: install into a temporary prefix, find it with pkg-config,
# build and run the plain-make consumer (shared and static), uninstall, and check that the
# prefix is empty again. Also builds and runs the SwiftPM consumers: without traits (checking
# that it resolves nothing but MmapKit) and with each package trait.
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

# Package traits (both off by default): a consumer that enables none resolves nothing but MmapKit;
# one consumer per trait, each depending on MmapKit by path with `traits: [...]`.
dependencies=$(swift package show-dependencies --package-path Examples/swiftpm-consumer 2>&1)
echo "swiftpm-consumer (no traits) dependencies:"; echo "$dependencies"
if grep -q swift-system <<<"$dependencies"; then
    echo "a consumer without traits resolved swift-system" >&2; exit 1
fi
output=$(swift run --package-path Examples/system-interop-consumer SystemInteropConsumer 2>/dev/null | tail -1)
echo "system-interop-consumer: $output"
expected='mapped 4096 bytes by a FilePath that is not UTF-8 (caf\xe9), byte sum 522240; 96 by a FileDescriptor'
[ "$output" = "$expected" ] || { echo "expected: $expected" >&2; exit 1; }
output=$(swift run --package-path Examples/foundation-interop-consumer FoundationInteropConsumer 2>/dev/null | tail -1)
echo "foundation-interop-consumer: $output"
expected='Data of 4096 bytes over the mapping (no copy: true), byte sum 522240'
[ "$output" = "$expected" ] || { echo "expected: $expected" >&2; exit 1; }
