"""Checks pushed tags against the images rebuilt from this checkout, and their signatures with a public key.

For every image and tag: the digest the registry serves for REPOSITORY/NAME:TAG (crane, with the user's
docker config, as tools/oci/push.py uses it) must equal the digest of the layout built here. With --key (a
cosign public key), the pushed digest must also carry a signature by that key and its attestations: SBOMs
(spdxjson) equal to the ones built here, and provenance (slsaprovenance1) for the same targets and lock files.
Prints a progress line per tag, then a table; exits 1 when any tag fails, 2 when it cannot check at all.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools import cli
from tools.oci import push
from tools.oci.push import Attestation, PushError, Target

NOT_CHECKED = "not checked (no --key)"
VERIFIED = "verified"


class VerifyError(Exception):
    """The check cannot run at all; the message names the problem and the fix."""


@dataclass(frozen=True)
class Row:
    reference: str
    pushed: str  # "" when the tag is missing
    rebuilt: str
    signature: str
    verdict: str


def attested(reference: str, key: Path, kind: str) -> list[Any] | None:
    """The predicates of one type that `key` attested for the reference; None when none verifies."""
    result = push.Signer.cosign(
        ["verify-attestation", "--key", str(key), "--type", kind, *push.OFFLINE_VERIFYING], reference)
    return push.predicates(result.stdout, kind) if result.returncode == 0 else None


def provenance_inputs(predicate: Any) -> str:
    """What of a provenance predicate must match the rebuild: the target and the lock files' digests (not the
    source commit, which differs between a checkout and the one pushed from when only other files changed)."""
    try:
        definition = predicate["buildDefinition"]
        locks = [dependency for dependency in definition["resolvedDependencies"] if dependency.get("name") != "source"]
        return json.dumps([definition["externalParameters"]["target"], locks], sort_keys=True)
    except (TypeError, KeyError, AttributeError):
        return json.dumps(predicate, sort_keys=True)


def check_signature(reference: str, key: Path, expected: list[Attestation]) -> str:
    """VERIFIED, or 'BAD: ...' naming what failed, for one pushed digest."""
    signed = push.Signer.cosign(["verify", "--key", str(key), *push.OFFLINE_VERIFYING], reference)
    if signed.returncode != 0:
        return "BAD: no signature by this key"
    for kind, normalise in (("spdxjson", lambda p: json.dumps(p, sort_keys=True)), ("slsaprovenance1", provenance_inputs)):
        wanted = sorted(normalise(json.loads(a.predicate.read_text())) for a in expected if a.type == kind)
        if not wanted:
            continue
        found = attested(reference, key, kind)
        if found is None:
            return f"BAD: no {kind} attestation by this key"
        if sorted(set(normalise(predicate) for predicate in found)) != sorted(set(wanted)):
            return f"BAD: {kind} attestations differ from the rebuilt ones"
    return VERIFIED


def expected_attestations(target: Target, digest: str, attestations: list[Attestation]) -> list[Attestation]:
    """The attestations push attaches to a digest: its own and those of every image under it."""
    subjects = {digest, *push.child_digests(target.layout, digest)}
    return [attestation for attestation in attestations if push.layout_digest(attestation.subject) in subjects]


def verify(targets: list[Target], key: Path | None, attestations: list[Attestation]) -> list[Row]:
    rows: list[Row] = []
    # (pushed reference by digest, rebuilt layout) -> result, so tags sharing a digest are checked once; the
    # layout is part of the key because what is expected of a digest depends on which image's tag serves it.
    signatures: dict[tuple[str, Path], str] = {}
    total = sum(len(target.names) for target in targets)
    for target in targets:
        rebuilt = push.layout_digest(target.layout)
        for tag in target.names:
            reference = f"{target.repository}:{tag}"
            print(f"verify: [{len(rows) + 1}/{total}] {reference}", file=sys.stderr, flush=True)
            pushed = push.remote_digest(reference)
            signature = NOT_CHECKED if key is None else "-"
            if pushed and key is not None:
                by_digest = f"{target.repository}@{pushed}"
                if (by_digest, target.layout) not in signatures:
                    signatures[by_digest, target.layout] = check_signature(
                        by_digest, key, expected_attestations(target, rebuilt, attestations))
                signature = signatures[by_digest, target.layout]
            if not pushed:
                verdict = "MISSING"
            elif pushed != rebuilt:
                verdict = "MISMATCH"
            elif signature.startswith("BAD"):
                verdict = "BAD SIGNATURE"
            else:
                verdict = "OK"
            rows.append(Row(reference, pushed, rebuilt, signature, verdict))
    return rows


def table(rows: list[Row]) -> str:
    header = ("tag", "pushed digest", "rebuilt digest", "signature", "verdict")
    cells = [header, *((row.reference, row.pushed or "(none)", row.rebuilt, row.signature, row.verdict)
                       for row in rows)]
    widths = [max(len(cell[column]) for cell in cells) for column in range(len(header))]
    return "\n".join("  ".join(cell[column].ljust(widths[column]) for column in range(len(header))).rstrip()
                     for cell in cells)


def check_key(key: str) -> Path | None:
    if not key:
        return None
    path = push.key_file(key, "public key", "pass --key naming the cosign.pub the images were signed with")
    if "PRIVATE KEY" in path.read_text(errors="replace"):
        raise VerifyError(f"{key} is a private key; pass the public key (cosign.pub, or `cosign public-key "
                          "--key cosign.key`)")
    return path


# A check that cannot run at all exits 2, apart from 1 for tags that fail it.
@cli.tool("verify", VerifyError, PushError, status=2)
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=push.parse_image, action="append", default=[], required=True,
                        help="LAYOUT=NAME:TAG[,TAG...]: the rebuilt image and the tags it is pushed as (repeatable)")
    parser.add_argument("-r", "--repository", help="the prefix the images were pushed under (default: "
                        "DISTROLESS_REPOSITORY), as given to :push")
    parser.add_argument("--key", default="", help="cosign public key: also verify signatures and attestations")
    parser.add_argument("--attest", type=push.parse_attestation, action="append", default=[],
                        help="LAYOUT=TYPE=PREDICATE: an attestation :push attaches (repeatable)")
    args = parser.parse_args(argv)
    prefix = (args.repository or os.environ.get("DISTROLESS_REPOSITORY", "")).rstrip("/")
    if not prefix:
        raise VerifyError("no repository: pass --repository REGISTRY/PREFIX (as given to :push) or set "
                          "DISTROLESS_REPOSITORY")
    targets = [Target(layout, f"{prefix}/{name}", tags) for layout, name, tags in args.image]
    for target in targets:
        push.check_target(target)
    key = check_key(args.key)
    if key is None:
        print("verify: NOTE: no --key: digests are compared, signatures and attestations are NOT checked",
              file=sys.stderr)
    rows = verify(targets, key, args.attest)
    print(table(rows))
    failed = [row for row in rows if row.verdict != "OK"]
    if failed:
        print(f"verify: {len(failed)} of {len(rows)} tags FAILED: "
              + ", ".join(f"{row.reference} ({row.verdict})" for row in failed), file=sys.stderr)
        return 1
    print(f"verify: all {len(rows)} tags serve the images rebuilt here"
          + (", signed and attested by the key" if key else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
