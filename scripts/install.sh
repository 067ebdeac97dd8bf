#!/usr/bin/env bash
# Builds MmapKit with swiftc (no SwiftPM needed by consumers) and installs, for a make-driven
# Swift build: libMmapKit.so and libMmapKit.a, the MmapKit module for this compiler, and
# mmapkit.pc. Records every installed file in a manifest that `make uninstall` replays.
#
# usage: scripts/install.sh PREFIX [DESTDIR]
set -euo pipefail
prefix=${1:?usage: install.sh PREFIX [DESTDIR]}
destdir=${2:-}
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/.build-install"
swiftc=${SWIFTC:-swiftc}
cc=${CC:-clang}
rm -rf "$build" && mkdir -p "$build/obj" "$build/module" "$build/shim"

# The C shim: compiled into the library; its header and module map stay private to this build.
for source in "$root"/Sources/CMmapShim/*.c; do
    "$cc" -std=gnu11 -D_GNU_SOURCE -O2 -fPIC -Wall -Wextra -Werror -I "$root/Sources/CMmapShim/include" \
        -c "$source" -o "$build/obj/$(basename "${source%.c}").o"
done
cat > "$build/shim/module.modulemap" <<MAP
module CMmapShim {
    header "$root/Sources/CMmapShim/include/CMmapShim.h"
    export *
}
MAP

swift_flags=(
    -module-name MmapKit -parse-as-library -swift-version 6 -O -wmo -enable-library-evolution
    -enable-experimental-feature Lifetimes -strict-memory-safety
    -I "$build/shim" -Xcc -D_GNU_SOURCE
)
# Every Swift file of the target, whatever folder it lives in (sorted: the build is reproducible).
mapfile -t sources < <(find "$root/Sources/MmapKit" -name '*.swift' -not -path '*.docc/*' | LC_ALL=C sort)
"$swiftc" "${swift_flags[@]}" -emit-module -emit-module-path "$build/module/MmapKit.swiftmodule" \
    -emit-library -o "$build/libMmapKit.so" -Xlinker -soname=libMmapKit.so "${sources[@]}" "$build"/obj/*.o
"$swiftc" "${swift_flags[@]}" -static -emit-library -o "$build/libMmapKit.a" "${sources[@]}"
ar rs "$build/libMmapKit.a" "$build"/obj/*.o 2>/dev/null

libdir="$prefix/lib"
moduledir="$prefix/lib/swift/MmapKit"
cat > "$build/mmapkit.pc" <<PC
prefix=$prefix
libdir=\${prefix}/lib
moduledir=\${prefix}/lib/swift/MmapKit

Name: MmapKit
Description: Memory-mapped files and memory for Swift on Linux
Version: 0.1.0
Cflags: -I\${moduledir}
Libs: -L\${libdir} -lMmapKit -Xlinker -rpath=\${libdir}
PC

manifest_dir="$prefix/share/mmapkit"
files=(
    "$build/libMmapKit.so:$libdir/libMmapKit.so"
    "$build/libMmapKit.a:$libdir/libMmapKit.a"
    "$build/module/MmapKit.swiftmodule:$moduledir/MmapKit.swiftmodule"
    "$build/module/MmapKit.swiftdoc:$moduledir/MmapKit.swiftdoc"
    "$build/mmapkit.pc:$libdir/pkgconfig/mmapkit.pc"
)
manifest="$build/install-manifest.txt"
: > "$manifest"
for pair in "${files[@]}"; do
    from=${pair%%:*}
    to=${pair#*:}
    install -D -m 0644 "$from" "$destdir$to"
    echo "$to" >> "$manifest"
done
echo "$manifest_dir/install-manifest.txt" >> "$manifest"
install -D -m 0644 "$manifest" "$destdir$manifest_dir/install-manifest.txt"
echo "installed into $destdir$prefix:"
sed 's/^/  /' "$manifest"
