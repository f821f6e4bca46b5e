# Official etcd release checksums: sha256 of etcd-v{version}-linux-{arch}.tar.gz,
# from each release's SHA256SUMS. The same table as `PINNED` in src/release.rs;
# tests/nix.rs fails when the two differ, so change both together.
#
# `hex` is what `etcdpack --etcd-sha256` takes; `sri` is what fetchurl's `hash`
# takes. Plain data: evaluable without nixpkgs.
{
  "3.4.16" = {
    amd64 = {
      hex = "2e2d5b3572e077e7641193ed07b4929b0eaf0dc2f9463e9b677765528acafb89";
      sri = "sha256-Li1bNXLgd+dkEZPtB7SSmw6vDcL5Rj6bZ3dlUorK+4k=";
    };
    arm64 = {
      hex = "6712ff22aeec39ed19688b1edf6747194193b074548fc62163e4804ca0264512";
      sri = "sha256-ZxL/Iq7sOe0ZaIse32dHGUGTsHRUj8YhY+SATKAmRRI=";
    };
  };
}
