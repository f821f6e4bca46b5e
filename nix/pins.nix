# Official etcd release checksums: sha256 of etcd-v{version}-linux-{arch}.tar.gz,
# each confirmed by two independent public sources (see `PINNED`). The same table as `PINNED` in src/release.rs;
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
  "3.5.33" = {
    amd64 = {
      hex = "5025b5b24d81a9616b6e284ccd439b9a3df055ef8fdcdc142af3ec8f6a3b3c95";
      sri = "sha256-UCW1sk2BqWFrbihMzUObmj3wVe+P3NwUKvPsj2o7PJU=";
    };
  };
  "3.6.14" = {
    amd64 = {
      hex = "ffe840ff9295808e88cce2794a18a5ac87f12a5203c8314d0bf6aa119b41bac5";
      sri = "sha256-/+hA/5KVgI6IzOJ5ShilrIfxKlIDyDFNC/aqEZtBusU=";
    };
    arm64 = {
      hex = "fa1b80565ee6fc2df1ae6f57a508b221f3ecc7d591c317c581cd8281b0842b3e";
      sri = "sha256-+huAVl7m/C3xrm9XpQiyIfPsx9WRwxfFgc2CgbCEKz4=";
    };
  };
}
