#!/usr/bin/env bash
# Removes exactly the files `make install` recorded in its manifest, then the directories it
# created if they are left empty.
#
# usage: scripts/uninstall.sh PREFIX [DESTDIR]
set -euo pipefail
prefix=${1:?usage: uninstall.sh PREFIX [DESTDIR]}
destdir=${2:-}
manifest="$destdir$prefix/share/mmapkit/install-manifest.txt"
if [ ! -f "$manifest" ]; then
    echo "uninstall: no manifest at $manifest: nothing was installed there" >&2
    exit 1
fi
mapfile -t files < "$manifest"
for file in "${files[@]}"; do
    rm -f "$destdir$file"
    echo "removed $destdir$file"
done
for dir in "$prefix/lib/swift/MmapKit" "$prefix/lib/swift" "$prefix/lib/pkgconfig" "$prefix/share/mmapkit" \
    "$prefix/share" "$prefix/lib"; do
    rmdir --ignore-fail-on-non-empty "$destdir$dir" 2>/dev/null || true
done
