"""An image's inventory as a CycloneDX 1.6 SBOM, and the OCI referrer manifest that attaches it.

Document layout (https://cyclonedx.org/docs/1.6/json/):

- ``metadata.component``: the image (type ``container``; name = repository, version = manifest
  digest, purl ``pkg:oci/<last segment>@<digest>?repository_url=<registry>/<repository>``, the
  purl-spec ``oci`` type); its tags as ``moorage:image:tag`` properties.
- ``metadata.tools``: moorage and its version; ``metadata.timestamp``: when the scan ran.
- ``components``: the operating system (type ``operating-system``, name = os-release ``ID``,
  version = ``VERSION_ID``) and one ``library`` per package, with its purl.
- ``dependencies``: the image depends on every component (flat: the inventory does not know
  which package pulled in which).
- ``vulnerabilities``: one per finding (a finding is one vulnerability of one package), its
  ``affects`` naming that package's bom-ref.

bom-refs: a package's bom-ref is its purl. The same purl can be found more than once (one wheel
installed in two virtualenvs); then every package sharing it gets ``<purl>|<path>`` (and
``|<n>`` if the path repeats too), so each purl keeps a stable ref regardless of which copy
comes first.

Properties we add (our own ``moorage:`` namespace; Trivy's ``aquasecurity:trivy:*`` names are
its own and would claim Trivy produced the document): ``moorage:package:type``,
``moorage:package:path`` (the file that recorded the package), ``moorage:package:layer`` (the
layer that last wrote it), ``moorage:package:source-name`` / ``moorage:package:source-version``
(the source package an OS package was built from).

Determinism: the same input gives the same bytes. The serial number is a uuid5 of the image and
``created``; every bom-ref is explicit (the library would otherwise invent random ones); the
library orders components, properties and vulnerabilities by its own sort keys.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from cyclonedx.model import Property, XsUri
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.tool import ToolRepository
from cyclonedx.model.vulnerability import (
    BomTarget,
    Vulnerability,
    VulnerabilityAdvisory,
    VulnerabilityRating,
    VulnerabilityReference,
    VulnerabilityScoreSource,
    VulnerabilitySeverity,
    VulnerabilitySource,
)
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from moorage import __version__
from moorage.domain.digests import Digest
from moorage.domain.findings import Finding, Severity
from moorage.domain.inventory import Inventory, OperatingSystem, Package
from moorage.domain.manifests import OCI_EMPTY_CONFIG, OCI_MANIFEST

SBOM_MEDIA_TYPE = "application/vnd.cyclonedx+json"

# OCI image-spec 1.1, "Guidance for an Empty Descriptor": an artifact without a config points at
# the two-byte blob ``{}``. Whoever pushes the referrer manifest must push this blob too.
EMPTY_CONFIG_BYTES = b"{}"
EMPTY_CONFIG_DIGEST = Digest.parse(
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
)

SBOM_FILE_NAME = "sbom.cdx.json"
SCANNER_ANNOTATION = "com.moorage.sbom.scanner"

# A fixed namespace, so that serial numbers are reproducible and never collide with other
# tools' uuid5s.
_SERIAL_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://moorage.invalid/sbom")

_SEVERITY = {
    Severity.INFORMATIONAL: VulnerabilitySeverity.INFO,
    Severity.LOW: VulnerabilitySeverity.LOW,
    Severity.MEDIUM: VulnerabilitySeverity.MEDIUM,
    Severity.HIGH: VulnerabilitySeverity.HIGH,
    Severity.CRITICAL: VulnerabilitySeverity.CRITICAL,
    Severity.UNDEFINED: VulnerabilitySeverity.UNKNOWN,
}


@dataclass(frozen=True, slots=True)
class ScannedImage:
    """The image an SBOM describes: the registry host clients pull from (``host[:port]``),
    the repository, the manifest digest and the tags pointing at it."""

    registry: str
    repository: str
    digest: Digest
    tags: tuple[str, ...] = ()

    @property
    def purl(self) -> str:
        # purl-spec oci type: the name is the repository's last segment, lower-cased; where
        # the image lives goes in repository_url.
        return PackageURL(
            type="oci",
            name=self.repository.rsplit("/", 1)[-1].lower(),
            version=str(self.digest),
            qualifiers={"repository_url": f"{self.registry}/{self.repository}"},
        ).to_string()


def build_sbom(
    inventory: Inventory,
    *,
    image: ScannedImage,
    created: datetime,
    findings: Sequence[Finding] = (),
) -> bytes:
    """The CycloneDX 1.6 JSON document (UTF-8) for ``inventory`` of ``image``.

    ``created`` must be timezone-aware (it becomes ``metadata.timestamp``). Raises ValueError
    when it is naive, or when a finding names a package that is not in the inventory.
    """
    if created.tzinfo is None:
        raise ValueError("created must be timezone-aware")
    created = created.astimezone(UTC)

    image_component = Component(
        type=ComponentType.CONTAINER,
        name=image.repository,
        version=str(image.digest),
        bom_ref=image.purl,
        purl=PackageURL.from_string(image.purl),
        properties=[Property(name="moorage:image:tag", value=tag) for tag in image.tags],
    )
    # set(): an identical package recorded twice is one component.
    packages = sorted(set(inventory.packages), key=_package_order)
    refs = dict(zip(packages, _package_refs(packages), strict=True))
    components = [_package_component(package, refs[package]) for package in packages]
    if inventory.os is not None:
        components.append(_os_component(inventory.os))

    bom = Bom(
        serial_number=uuid.uuid5(_SERIAL_NAMESPACE, f"{image.purl}|{created.isoformat()}"),
        metadata=BomMetaData(
            timestamp=created,
            tools=ToolRepository(
                components=[
                    Component(
                        type=ComponentType.APPLICATION,
                        name="moorage",
                        version=__version__,
                        bom_ref=f"moorage@{__version__}",
                    )
                ]
            ),
            component=image_component,
        ),
        components=components,
        vulnerabilities=_vulnerabilities(findings, refs),
    )
    bom.register_dependency(image_component, components)
    return JsonV1Dot6(bom).output_as_string(indent=None).encode()


def _package_order(package: Package) -> tuple[str, ...]:
    return (
        package.purl,
        package.path,
        str(package.layer or ""),
        package.name,
        package.version,
        package.source_name or "",
        package.source_version or "",
    )


def _package_refs(packages: Sequence[Package]) -> list[str]:
    """bom-refs for ``packages`` (sorted), in order: the purl, unless it is shared."""
    shared = Counter(package.purl for package in packages)
    taken: set[str] = set()
    refs = []
    for package in packages:
        ref = package.purl
        if shared[ref] > 1:
            ref = _unique(f"{ref}|{package.path}", taken)
        taken.add(ref)
        refs.append(ref)
    return refs


def _unique(ref: str, taken: set[str]) -> str:
    candidate, n = ref, 1
    while candidate in taken:
        n += 1
        candidate = f"{ref}|{n}"
    return candidate


def _package_component(package: Package, ref: str) -> Component:
    properties = [
        Property(name="moorage:package:type", value=package.type.value),
        Property(name="moorage:package:path", value=package.path),
    ]
    if package.layer is not None:
        properties.append(Property(name="moorage:package:layer", value=str(package.layer)))
    if package.source_name is not None:
        properties.append(Property(name="moorage:package:source-name", value=package.source_name))
    if package.source_version is not None:
        properties.append(
            Property(name="moorage:package:source-version", value=package.source_version)
        )
    return Component(
        type=ComponentType.LIBRARY,
        group=package.namespace,
        name=package.name,
        version=package.version,
        bom_ref=ref,
        purl=PackageURL.from_string(package.purl),
        properties=properties,
    )


def _os_component(os: OperatingSystem) -> Component:
    # Not a package, so no purl; "os:" cannot collide with a purl ("pkg:") bom-ref.
    return Component(
        type=ComponentType.OPERATING_SYSTEM,
        name=os.id,
        version=os.version_id,
        description=os.pretty_name,
        bom_ref=f"os:{os.id}@{os.version_id or ''}",
    )


def _vulnerabilities(
    findings: Iterable[Finding], refs: Mapping[Package, str]
) -> list[Vulnerability]:
    taken: set[str] = set()
    vulnerabilities = []
    for finding in sorted(findings, key=lambda f: (f.name, _package_order(f.package))):
        affected = refs.get(finding.package)
        if affected is None:
            raise ValueError(f"{finding.name} names a package not in the inventory")
        ref = _unique(f"{finding.name}|{affected}", taken)
        taken.add(ref)
        vulnerabilities.append(_vulnerability(finding, ref, affected))
    return vulnerabilities


def _vulnerability(finding: Finding, ref: str, affected: str) -> Vulnerability:
    source = VulnerabilitySource(
        name=finding.source, url=XsUri(finding.links[0]) if finding.links else None
    )
    references = []
    if finding.advisory_id != finding.name:
        references.append(VulnerabilityReference(id=finding.advisory_id, source=source))
    recommendation = None
    if finding.fixed_versions:
        fixed = " or ".join(finding.fixed_versions)
        recommendation = f"Upgrade {finding.package.name} to {fixed}"
    return Vulnerability(
        bom_ref=ref,
        id=finding.name,
        source=source,
        references=references,
        ratings=[_rating(finding, source)],
        description=finding.title or None,
        detail=finding.description or None,
        recommendation=recommendation,
        advisories=[VulnerabilityAdvisory(url=XsUri(link)) for link in finding.links],
        affects=[BomTarget(ref=affected)],
    )


def _rating(finding: Finding, source: VulnerabilitySource) -> VulnerabilityRating:
    method = None
    if finding.cvss_v3_vector is not None:
        # CycloneDX tells v3.0 from v3.1 apart; the vector's prefix says which it is.
        v31 = finding.cvss_v3_vector.startswith("CVSS:3.1/")
        method = VulnerabilityScoreSource.CVSS_V3_1 if v31 else VulnerabilityScoreSource.CVSS_V3
    return VulnerabilityRating(
        source=source,
        severity=_SEVERITY[finding.severity],
        score=None if finding.cvss_v3_score is None else Decimal(str(finding.cvss_v3_score)),
        method=method,
        vector=finding.cvss_v3_vector,
    )


def referrer_manifest(
    *,
    sbom_digest: Digest,
    sbom_size: int,
    subject_digest: Digest,
    subject_media_type: str,
    subject_size: int,
    created: datetime,
    annotations: Mapping[str, str] | None = None,
) -> bytes:
    """An OCI image manifest carrying the SBOM blob as an artifact whose ``subject`` is the
    scanned image, so that the referrers API lists it under the image.

    Follows image-spec 1.1 "Guidelines for Artifact Usage": ``artifactType`` set, ``config``
    the empty descriptor (push :data:`EMPTY_CONFIG_BYTES` with it), the SBOM as the one
    layer. ``annotations`` are added to the manifest's; ours (created, scanner) win on a clash.
    ``created`` must be timezone-aware (ValueError otherwise). Keys are sorted and separators
    compact, so the same input always gives the same bytes, hence the same digest.
    """
    if created.tzinfo is None:
        raise ValueError("created must be timezone-aware")
    timestamp = created.astimezone(UTC).isoformat().replace("+00:00", "Z")
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": SBOM_MEDIA_TYPE,
        "config": {
            "mediaType": OCI_EMPTY_CONFIG,
            "digest": str(EMPTY_CONFIG_DIGEST),
            "size": len(EMPTY_CONFIG_BYTES),
        },
        "layers": [
            {
                "mediaType": SBOM_MEDIA_TYPE,
                "digest": str(sbom_digest),
                "size": sbom_size,
                # What oras and similar clients name the file when they pull the artifact.
                "annotations": {"org.opencontainers.image.title": SBOM_FILE_NAME},
            }
        ],
        "subject": {
            "mediaType": subject_media_type,
            "digest": str(subject_digest),
            "size": subject_size,
        },
        "annotations": {
            **(annotations or {}),
            "org.opencontainers.image.created": timestamp,
            SCANNER_ANNOTATION: f"moorage {__version__}",
        },
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
