"""The domain and the jurisdiction plugin contract. No Kafka, no files, no clock."""

from mra.core.connectors import CertificateClaim, IssuerAnswer, IssuerConnector, IssuerStatus
from mra.core.errors import MraError, NotFound, ValidationFailed
from mra.core.hookspecs import hookimpl, hookspec
from mra.core.models import (
    BenefitDecision,
    BenefitRule,
    CatalogueEdition,
    CatalogueEntry,
    CatalogueList,
    DecisionContext,
    Employment,
    Experience,
    HolderCategory,
    HolderFacts,
    Honour,
    Issuer,
    Jurisdiction,
    Outcome,
    Provision,
    RepealedEdition,
    VerifiedCertificate,
    full_years,
    holder_category,
)
from mra.core.settings import PolicySetting

__all__ = [
    "BenefitDecision",
    "BenefitRule",
    "CatalogueEdition",
    "CatalogueEntry",
    "CatalogueList",
    "CertificateClaim",
    "DecisionContext",
    "Employment",
    "Experience",
    "HolderCategory",
    "HolderFacts",
    "Honour",
    "Issuer",
    "IssuerAnswer",
    "IssuerConnector",
    "IssuerStatus",
    "Jurisdiction",
    "MraError",
    "NotFound",
    "Outcome",
    "PolicySetting",
    "Provision",
    "RepealedEdition",
    "ValidationFailed",
    "VerifiedCertificate",
    "full_years",
    "holder_category",
    "hookimpl",
    "hookspec",
]
