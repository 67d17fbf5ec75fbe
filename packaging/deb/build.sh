#!/usr/bin/env bash
# Makes the .deb from what `make install` laid out in STAGE (PREFIX=/usr, Debian's unit
# and completion directories): Debian's touches (the man page compressed, the binaries
# stripped, copyright and changelog), DEBIAN/ with the maintainer scripts of this
# directory, Depends from dpkg-shlibdeps, and dpkg-deb. Prints the package's path.
#
#   packaging/deb/build.sh STAGE VERSION OUTDIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
stage=$(realpath "${1:?usage: build.sh STAGE VERSION OUTDIR}")
version=${2:?usage: build.sh STAGE VERSION OUTDIR}
out=$(realpath "${3:?usage: build.sh STAGE VERSION OUTDIR}")
arch=$(dpkg --print-architecture)
doc=$stage/usr/share/doc/hotplug-agent

gzip -9nf "$stage/usr/share/man/man8/hotplug-agent.8"
# bash-completion sources the file: no interpreter line.
sed -i '1{/^#!/d}' "$stage/usr/share/bash-completion/completions/hotplug-agent"
binaries=("$stage/usr/bin/hotplug-agent" "$stage/usr/libexec/hotplug-agent/hotplug-agent-lab")
strip --remove-section=.comment --remove-section=.note --strip-unneeded "${binaries[@]}"
install -Dm644 "$here/copyright" "$doc/copyright"
# A native package's changelog, dated by the last commit (a build is reproducible).
date=$(git -C "$here" log -1 --format=%aD 2>/dev/null || date -R)
{
    printf 'hotplug-agent (%s) unstable; urgency=medium\n\n' "$version"
    printf '  * Release %s: see /usr/share/doc/hotplug-agent/README.md.\n\n' "$version"
    printf ' -- hotplug-agent developers <hotplug-agent@example.org>  %s\n' "$date"
} | gzip -9n > "$doc/changelog.gz"
chmod 644 "$doc/changelog.gz"

rm -rf "$stage/DEBIAN"
mkdir -p "$stage/DEBIAN"
install -m755 "$here/postinst" "$here/prerm" "$here/postrm" "$stage/DEBIAN/"
# dpkg-shlibdeps reads a source package's debian/control: a minimal one beside the stage.
shlibs=$(mktemp -d)
trap 'rm -rf "$shlibs"' EXIT
mkdir -p "$shlibs/debian"
printf 'Source: hotplug-agent\n\nPackage: hotplug-agent\nArchitecture: any\n' > "$shlibs/debian/control"
depends=$(cd "$shlibs" && dpkg-shlibdeps -O "${binaries[@]}" | sed -n 's/^shlibs:Depends=//p')
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" -e "s/@DEPENDS@/$depends/" \
    "$here/control.in" > "$stage/DEBIAN/control"
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) > "$stage/DEBIAN/md5sums"
mkdir -p "$out"
package=$out/hotplug-agent_${version}_$arch.deb
dpkg-deb --root-owner-group -Zxz --build "$stage" "$package" >/dev/null
echo "$package"
