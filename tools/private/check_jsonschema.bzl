"""check-jsonschema (with GitHub's workflow schema built in), from its PyPI wheels pinned by hash, for the test
that validates .github/workflows/."""

load("//tools/private:pip_wheels.bzl", "wheel_library")

# check-jsonschema 0.39.0 and its closure for the build root's Python 3.14; pure-Python wheels fit every machine
# (charset-normalizer's pure one is chosen), rpds-py and regress are compiled, one wheel per machine.
_WHEELS = {
    "check-jsonschema==0.39.0": "14ce5c94871c551268ea948ffe21e9f1464dc48fb20bf9a4c13deeaaf756cf9b",
    "attrs==26.1.0": "c647aa4a12dfbad9333ca4e71fe62ddc36f4e63b2d260a37a8b83d2f043ac309",
    "certifi==2026.10.19.post1": "1324c476b4811eff41a8bc2122cd0bbd4d9c7234c725446d99ab1612b3a7fdd2",
    "charset-normalizer==3.5.3": "96e268b0cbda016ac519513294fcd17032264085b600abaac58b93049477e132",
    "click==8.5.1": "8bb5376d2006950386f8c6427613334a2acadc5f559cb80e638d00b4df957e37",
    "idna==3.20": "ab7ae7122974553370f0bdb919e1a960b2cd1bc1ef0276416d896db81c14582c",
    "jsonschema==4.26.0": "d489f15263b8d200f8387e64b4c3a75f06629559fb73deb8fdfb525f2dab50ce",
    "jsonschema-specifications==2025.9.1": "98802fee3a11ee76ecaca44429fda8a41bff98b00a0f2838151b113f210cc6fe",
    "referencing==0.37.0": "381329a9f99628c9069361716891d34ad94af76e461dcb0335825aecc7692231",
    "requests==2.34.2": "2a0d60c172f83ac6ab31e4554906c0f3b3588d37b5cb939b1c061f4907e278e0",
    "ruamel.yaml==0.19.1": "27592957fedf6e0b62f281e96effd28043345e0e66001f97683aa9a40c667c93",
    "typing-extensions==4.16.0": "481caa481374e813c1b176ada14e97f1f67a4539ce9cfeb3f350d78d6370c2e8",
    "urllib3==2.8.0": "0cf3cae568d36aa9576b28dfb35f11328f1cb974ca7647d9475ebb86c75ac6e3",
}
_COMPILED = {
    "x86_64": {
        "regress==2026.9.1": "56716962a7c42f1ddb2d9d5467282f1f4855538e9f221cb0c5f51f1c9a2056be",
        "rpds-py==2026.9.1": "eac2f5dbafd585dfe31f86a23ebf0d3ba480a9d49ebc87947267b5608d4ea0cd",
    },
    "aarch64": {
        "regress==2026.9.1": "9d806b33a8ce23b76b906144e6c26155535cadfdb63db68f124dc8938867c480",
        "rpds-py==2026.9.1": "07deecbfce94c78473018bc7d10b337cc651d12df87a1eb2cb3e4024bc9c33d0",
    },
}

def _check_jsonschema_impl(module_ctx):
    wheel_library(
        name = "check_jsonschema",
        pins = _WHEELS,
        per_machine = json.encode(_COMPILED),
        what = "check-jsonschema",
        usage = "`python3 -m check_jsonschema --builtin-schema vendor.github-workflows FILE` with this library on the path.",
        pinned_in = "tools/private/check_jsonschema.bzl",
    )

check_jsonschema = module_extension(implementation = _check_jsonschema_impl)
