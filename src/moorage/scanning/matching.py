"""Match an image's inventory against advisories: which installed packages are vulnerable.

The pipeline, for each package of the inventory:

1. :func:`ecosystem_of` names the OSV ecosystem its advisories are filed under (None: the
   package is not matched, e.g. an OS package of a distribution we have no mapping for);
2. its :class:`PackageKey` (:func:`key_of`) is the ecosystem plus the name advisories use: the
   *source* package of an OS package (Debian, Ubuntu and Alpine advisories name source
   packages), ``group:artifact`` on Maven, ``@scope/name`` on npm, the module path on Go
   (``stdlib`` for the toolchain);
3. each advisory stored under that key, and each of its ``affected`` entries with that key,
   is evaluated (:func:`moorage.scanning.versions.is_affected`) against the *source* version
   of an OS package (the fixed versions in Debian and Alpine advisories are source versions),
   the package's version otherwise.

One finding per (advisory, package): the binary packages built from one source (``libssl3``
and ``openssl`` from ``openssl``) each get theirs, naming themselves, as ECR reports them.
Two advisories about the same vulnerability of the same package (an OSV ``DEBIAN-CVE-`` record
and a tracker record; GHSA and PYSEC records aliasing each other) are reported once: findings
are deduplicated by (package, CVE id if known else advisory id), keeping the one with the most
information (a rating, a CVSS score, fixed versions, links, a description, in that order).

Severity (ECR: the distribution's rating when there is one, else CVSS by NVD's bands): the
vendor's rating of the package (``Affected.severity``), else the advisory's rating, else the
CVSS v3 score's band, else UNDEFINED. Vendor words map onto ECR's: MODERATE (GHSA, Red Hat) ->
MEDIUM, IMPORTANT (Red Hat) -> HIGH, NEGLIGIBLE (Ubuntu), UNIMPORTANT (Debian) and NONE (CVSS)
-> INFORMATIONAL; a word we do not know (Debian's "not yet assigned", Ubuntu's "untriaged")
counts as no rating.

Findings come out sorted by severity (CRITICAL first, UNDEFINED last), then name, then package
name, version and path, then advisory id: the same inputs always give the same list.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence

from moorage.domain.findings import Finding, Severity, severity_from_cvss
from moorage.domain.inventory import Inventory, OperatingSystem, Package, PackageType
from moorage.scanning.advisories.keys import PackageKey, package_key
from moorage.scanning.advisories.model import Advisory, Affected
from moorage.scanning.versions import Scheme, fixes_after, is_affected, scheme_of

log = logging.getLogger(__name__)

_LANGUAGE_ECOSYSTEMS = {
    PackageType.PYPI: "PyPI",
    PackageType.NPM: "npm",
    PackageType.GOLANG: "Go",
    PackageType.MAVEN: "Maven",
}

# os-release ID of an RPM distribution -> its OSV ecosystem family (release: the major version,
# or the whole VERSION_ID for Photon OS and Mageia, as their OSV records write it).
# Not mapped (TODO(#scanner-rpm)): RHEL, whose OSV ecosystems are product streams
# ("Red Hat:enterprise_linux:9::appstream") that os-release alone cannot tell apart; openSUSE and
# SUSE, keyed by marketing names; Amazon Linux and Oracle Linux, which are not in OSV.
_RPM_FAMILIES = {"almalinux": "AlmaLinux", "rocky": "Rocky Linux"}
_RPM_FULL_RELEASE = {"photon": "Photon OS", "mageia": "Mageia"}

_MAJOR_MINOR = re.compile(r"^(\d+)\.(\d+)")
_UBUNTU_RELEASE = re.compile(r"^(\d{2})\.(\d{2})$")
_CVE = re.compile(r"^CVE-\d{4}-\d+$")
# A distribution's record about one CVE: DEBIAN-CVE-2024-1234, UBUNTU-CVE-2024-1234.
_PREFIXED_CVE = re.compile(r"^[A-Z]+-(CVE-\d{4}-\d+)$")

_SEVERITY_WORDS = {
    "CRITICAL": Severity.CRITICAL,
    "HIGH": Severity.HIGH,
    "IMPORTANT": Severity.HIGH,
    "MEDIUM": Severity.MEDIUM,
    "MODERATE": Severity.MEDIUM,
    "LOW": Severity.LOW,
    "NEGLIGIBLE": Severity.INFORMATIONAL,
    "UNIMPORTANT": Severity.INFORMATIONAL,
    "NONE": Severity.INFORMATIONAL,
    "INFORMATIONAL": Severity.INFORMATIONAL,
}
_SEVERITY_ORDER = {
    severity: rank
    for rank, severity in enumerate(
        (
            Severity.CRITICAL,
            Severity.HIGH,
            Severity.MEDIUM,
            Severity.LOW,
            Severity.INFORMATIONAL,
            Severity.UNDEFINED,
        )
    )
}

# The advisory's own page, by id prefix, when its database publishes one.
_ADVISORY_PAGES = (
    ("GHSA-", "https://github.com/advisories/{id}"),
    ("GO-", "https://pkg.go.dev/vuln/{id}"),
    ("PYSEC-", "https://osv.dev/vulnerability/{id}"),
    ("CVE-", "https://nvd.nist.gov/vuln/detail/{id}"),
    ("DSA-", "https://security-tracker.debian.org/tracker/{id}"),
    ("DLA-", "https://security-tracker.debian.org/tracker/{id}"),
    ("DEBIAN-", "https://security-tracker.debian.org/tracker/{cve}"),
    ("USN-", "https://ubuntu.com/security/notices/{id}"),
    ("UBUNTU-", "https://ubuntu.com/security/{cve}"),
)


def ecosystem_of(os: OperatingSystem | None, package: Package) -> str | None:
    """The OSV ecosystem ``package`` is matched in, or None when it is not matched.

    ``deb``: ``Debian:<major VERSION_ID>``; ``Ubuntu:<YY.MM>``, with ``:LTS`` for April
    releases of even years (OSV's naming, which makes the suffix mandatory for LTS releases).
    ``apk``: ``Alpine:v<major>.<minor>``, or ``Wolfi``/``Chainguard``. ``rpm``: AlmaLinux and
    Rocky Linux by major version, Photon OS and Mageia by VERSION_ID; other distributions
    (RHEL among them, see the module's table) give None. Without a VERSION_ID (Debian testing,
    sid), None. Language packages: ``PyPI``, ``npm``, ``Go``, ``Maven`` whatever the OS.
    """
    if package.type in _LANGUAGE_ECOSYSTEMS:
        return _LANGUAGE_ECOSYSTEMS[package.type]
    if os is None:
        return None
    distribution, release = os.id.lower(), (os.version_id or "").strip()
    if package.type is PackageType.APK and distribution in ("wolfi", "chainguard"):
        return distribution.capitalize()
    if not release:
        return None
    if package.type is PackageType.DEB:
        if distribution == "debian":
            return f"Debian:{release.split('.', 1)[0]}"
        if distribution == "ubuntu" and (ubuntu := _UBUNTU_RELEASE.match(release)):
            lts = ubuntu[2] == "04" and int(ubuntu[1]) % 2 == 0
            return f"Ubuntu:{release}:LTS" if lts else f"Ubuntu:{release}"
    elif package.type is PackageType.APK:
        if distribution == "alpine" and (alpine := _MAJOR_MINOR.match(release)):
            return f"Alpine:v{alpine[1]}.{alpine[2]}"
    elif package.type is PackageType.RPM:
        if distribution in _RPM_FAMILIES:
            return f"{_RPM_FAMILIES[distribution]}:{release.split('.', 1)[0]}"
        if distribution in _RPM_FULL_RELEASE:
            return f"{_RPM_FULL_RELEASE[distribution]}:{release}"
    return None


def _is_os_package(package: Package) -> bool:
    return package.type in (PackageType.DEB, PackageType.APK, PackageType.RPM)


def _advisory_name(package: Package) -> str:
    """The name advisories give ``package`` (before the ecosystem's own normalisation)."""
    if _is_os_package(package):
        return package.source_name or package.name
    if package.type is PackageType.MAVEN and package.namespace:
        return f"{package.namespace}:{package.name}"
    if package.type is PackageType.NPM and package.namespace:
        return f"@{package.namespace}/{package.name}"
    return package.name


def _compared_version(package: Package) -> str:
    if _is_os_package(package):
        return package.source_version or package.version
    return package.version


def key_of(os: OperatingSystem | None, package: Package) -> PackageKey | None:
    """The key ``package``'s advisories are stored under, or None when it is not matched."""
    ecosystem = ecosystem_of(os, package)
    return None if ecosystem is None else package_key(ecosystem, _advisory_name(package))


def lookup_keys(inventory: Inventory) -> set[PackageKey]:
    """The keys to fetch advisories for, to :func:`match` ``inventory``."""
    keys = (key_of(inventory.os, package) for package in inventory.packages)
    return {key for key in keys if key is not None}


def match(
    inventory: Inventory, advisories: Mapping[PackageKey, Sequence[Advisory]]
) -> list[Finding]:
    """The findings of ``inventory`` given the advisories fetched for :func:`lookup_keys`
    (keys without advisories may be absent). Sorted as the module docstring says."""
    best: dict[tuple[Package, str], Finding] = {}
    for package in inventory.packages:
        key = key_of(inventory.os, package)
        if key is None:
            continue
        scheme = scheme_of(key.ecosystem)
        if scheme is None:
            log.debug("no version scheme for ecosystem %r", key.ecosystem)
            continue
        for advisory in advisories.get(key, ()):
            finding = _finding(advisory, key, scheme, package)
            if finding is None:
                continue
            slot = (package, finding.name)
            kept = best.get(slot)
            if kept is None or _richer(finding, kept):
                best[slot] = finding
    return sorted(best.values(), key=_order)


def _finding(
    advisory: Advisory, key: PackageKey, scheme: Scheme, package: Package
) -> Finding | None:
    version = _compared_version(package)
    hits = [
        entry
        for entry in advisory.affected
        if package_key(entry.ecosystem, entry.package) == key
        and is_affected(scheme, version, entry)
    ]
    if not hits:
        return None
    name = cve_of(advisory) or advisory.id
    return Finding(
        name=name,
        advisory_id=advisory.id,
        aliases=advisory.aliases,
        package=package,
        fixed_versions=fixes_after(scheme, version, (v for entry in hits for v in entry.fixed)),
        severity=severity_of(advisory, hits),
        cvss_v3_score=advisory.cvss_v3_score,
        cvss_v3_vector=advisory.cvss_v3_vector,
        title=advisory.summary or name,
        description=advisory.details or advisory.summary,
        links=links_of(advisory),
        source=advisory.source,
    )


def cve_of(advisory: Advisory) -> str | None:
    """The CVE the advisory is about: its id or first alias of the form ``CVE-…``, else the
    CVE a distribution's per-CVE id carries (``DEBIAN-CVE-2024-1234``), else None."""
    for candidate in (advisory.id, *advisory.aliases):
        if _CVE.match(candidate):
            return candidate
    prefixed = _PREFIXED_CVE.match(advisory.id)
    return prefixed[1] if prefixed else None


def normalise_severity(word: str | None) -> Severity | None:
    """A vendor's or database's rating as ECR's severity; None when absent or unknown."""
    if not word:
        return None
    return _SEVERITY_WORDS.get(word.strip(" *").upper())


def severity_of(advisory: Advisory, hits: Iterable[Affected] = ()) -> Severity:
    """The vendor's rating of the package (first affecting entry with one), else the
    advisory's, else the CVSS v3 band, else UNDEFINED."""
    for entry in hits:
        if (vendor := normalise_severity(entry.severity)) is not None:
            return vendor
    if (rated := normalise_severity(advisory.severity)) is not None:
        return rated
    if advisory.cvss_v3_score is not None:
        return severity_from_cvss(advisory.cvss_v3_score)
    return Severity.UNDEFINED


def links_of(advisory: Advisory) -> tuple[str, ...]:
    """The advisory's own page, then its references, each once. Its own page is the first
    reference naming its id (the database's page: Debian's tracker, Alpine's security site),
    else the page its id's database has for it (a CVE without one links to NVD)."""
    own = next((url for url in advisory.references if advisory.id in url), None)
    if own is None:
        for prefix, template in _ADVISORY_PAGES:
            if advisory.id.startswith(prefix):
                own = template.format(id=advisory.id, cve=cve_of(advisory) or advisory.id)
                break
    ordered = ([own] if own else []) + list(advisory.references)
    return tuple(dict.fromkeys(ordered))


def _information(finding: Finding) -> tuple[bool, bool, int, int, int]:
    return (
        finding.severity is not Severity.UNDEFINED,
        finding.cvss_v3_score is not None,
        len(finding.fixed_versions),
        len(finding.links),
        len(finding.description),
    )


def _richer(new: Finding, kept: Finding) -> bool:
    """Whether ``new`` tells more than ``kept`` about the same vulnerability; on a tie the
    smaller advisory id wins, so that the choice does not depend on the input's order."""
    ours, theirs = _information(new), _information(kept)
    return ours > theirs or (ours == theirs and new.advisory_id < kept.advisory_id)


def _order(finding: Finding) -> tuple[int, str, str, str, str, str]:
    package = finding.package
    return (
        _SEVERITY_ORDER[finding.severity],
        finding.name,
        package.name,
        package.version,
        package.path,
        finding.advisory_id,
    )
