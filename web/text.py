"""The pages' words: one key per phrase, its English text the catalogue's msgid (:mod:`mra.i18n`), and how a
request picks its language. Simplified Chinese is the default; the Chinese texts are in the zh_CN catalogue.
"""

from __future__ import annotations

from collections.abc import Callable

from mra import i18n
from mra.i18n.terms import N_

__all__ = ["DEFAULT", "LANGS", "MESSAGES", "negotiate", "translator"]

DEFAULT = "zh_CN"
LANGS = ("zh_CN", "en")

MESSAGES: dict[str, str] = {
    'site.name': N_('Beijing–Tianjin–Hebei Qualification Recognition'),
    'site.tagline': N_('Certificate verification, code checks and benefit decisions'),
    'nav.home': N_('Home'),
    'nav.check': N_('Check a code'),
    'nav.employer': N_('Employers'),
    'nav.clerk': N_('Bureau clerks'),
    'nav.ops': N_('Operations'),
    'nav.signin': N_('Sign in'),
    'nav.signout': N_('Sign out'),
    'nav.skip': N_('Skip to content'),
    'lang.switch': N_('中文'),
    'lang.label': N_('Language'),
    'home.check.title': N_('Check a verification code'),
    'home.check.text': N_("Anyone can check whether a certificate's verification code is valid."),
    'home.employer.title': N_('Employers'),
    'home.employer.text': N_('Submit a certificate for verification online; follow it and see its code.'),
    'home.clerk.title': N_('Bureau clerks'),
    'home.clerk.text': N_('Find a holder; see decisions, the clauses behind them, and what is due for review.'),
    'check.title': N_('Check a verification code'),
    'check.code': N_('Verification code'),
    'check.code.hint': N_('For example ABCD-EFGH-JKMN-P; any case, hyphens optional'),
    'check.submit': N_('Check'),
    'check.result': N_('Result'),
    'check.status.valid': N_('Valid'),
    'check.status.revoked': N_('Revoked'),
    'check.status.unknown': N_('Unknown'),
    'check.status.mistyped': N_('Mistyped'),
    'check.explain.valid': N_('The verification platform verified the certificate under this code as genuine.'),
    'check.explain.revoked': N_('The issuer withdrew this certificate; the code is no longer valid.'),
    'check.explain.unknown': N_('No certificate was verified under this code.'),
    'check.explain.mistyped': N_('A character of this code is mistyped: check each character and try again.'),
    'check.entry': N_('Catalogue entry'),
    'check.issuer': N_('Issuer'),
    'check.verified': N_('Verified on'),
    'check.expires': N_('Certificate valid until'),
    'check.expires.never': N_('does not expire'),
    'check.expired': N_('(expired)'),
    'check.holder': N_('Holder (masked)'),
    'check.revoked_at': N_('Revoked on'),
    'check.again': N_('Check another code'),
    'check.qr': N_('Scan the QR code to open this check page'),
    'signin.title': N_('Sign in'),
    'signin.token': N_('Access token'),
    'signin.token.hint': N_("Issued by the platform's operators (mra access add-employer / add-clerk / add-operator)"),
    'signin.submit': N_('Sign in'),
    'signin.bad': N_("This access token is not valid: check it and try again, or ask the platform's operators."),
    'signin.needed': N_('Please sign in first.'),
    'signin.wrong_role': N_('This access token does not give access to this page.'),
    'employer.title': N_('Employers'),
    'employer.requests': N_('My verification requests'),
    'employer.none': N_('No verification request submitted yet.'),
    'employer.new': N_('Submit a new verification request'),
    'employer.form.title': N_('Certificate verification request'),
    'employer.form.intro': N_(
        'Fields marked * are required. Only a pseudonym of the holder leaves the platform, never the name or '
        'the document number.'
    ),
    'employer.section.employer': N_('Employer'),
    'employer.section.holder': N_('Holder'),
    'employer.section.certificate': N_('Certificate'),
    'field.reference': N_('Your own reference (optional)'),
    'field.employer.name': N_('Employer name'),
    'field.employer.credit_code': N_('Unified social credit code'),
    'field.employer.region': N_('Employer region'),
    'field.holder.name': N_('Name'),
    'field.holder.nationality': N_('Nationality or region code'),
    'field.holder.nationality.hint': N_('ISO code such as GB or US; HK, MO, TW for those residents'),
    'field.holder.birth_date': N_('Date of birth'),
    'field.holder.document_type': N_('Identity document'),
    'field.holder.document_number': N_('Document number'),
    'field.certificate.entry': N_('Catalogue entry id'),
    'field.certificate.entry.hint': N_('For example BJ2025-I-139 or I-139'),
    'field.certificate.issuer': N_('Issuer'),
    'field.certificate.number': N_('Certificate number'),
    'field.certificate.issued': N_('Issued on'),
    'field.certificate.expires': N_('Valid until (leave empty if it does not expire)'),
    'date.hint': N_('As YYYY-MM-DD'),
    'employer.submit': N_('Submit the request'),
    'employer.refused': N_('The request was not accepted. Change the following and submit it again:'),
    'employer.unpublished': N_(
        'The request is accepted and kept, but could not be sent to the verification platform yet. Submit the'
        ' same request again later.'
    ),
    'request.title': N_('Verification request'),
    'request.id': N_('Request id'),
    'request.status': N_('Status'),
    'request.expected': N_('Expected by'),
    'request.entry': N_('Catalogue entry'),
    'request.issuer': N_('Issuer'),
    'request.holder': N_('Holder (masked)'),
    'request.holder_id': N_('Holder id (pseudonym)'),
    'request.code': N_('Verification code'),
    'request.verified_at': N_('Verified at'),
    'request.reasons': N_('Reasons'),
    'request.check_link': N_('Open the public check page'),
    'request.back': N_('Back to my requests'),
    'request.submitted': N_('The request is accepted.'),
    'status.submitted': N_('Submitted'),
    'status.accepted': N_('Accepted'),
    'status.requested': N_('Submitted'),
    'status.deferred': N_('Waiting for the issuer'),
    'status.verified': N_('Verified'),
    'status.rejected': N_('Not verified'),
    'status.refused': N_('Refused'),
    'status.revoked': N_('Code revoked'),
    'clerk.title': N_('Bureau clerks'),
    'clerk.jurisdiction': N_('Jurisdiction'),
    'clerk.find': N_('Find a holder'),
    'clerk.find.hint': N_('Fill in one of the following'),
    'clerk.request_id': N_('Request id'),
    'clerk.code': N_('Verification code'),
    'clerk.employer': N_('Employer name or unified social credit code'),
    'clerk.search': N_('Find'),
    'clerk.results': N_('Holders found'),
    'clerk.none': N_('No holder matches.'),
    'clerk.open': N_('Open'),
    'clerk.review': N_('Review list'),
    'clerk.review.none': N_('Nothing to review.'),
    'clerk.review.intro': N_(
        'Conditional decisions (the holder must still show something) and decisions kept for review after '
        'their catalogue entry was withdrawn.'
    ),
    'holder.title': N_('Holder'),
    'holder.id': N_('Holder id (pseudonym)'),
    'holder.category': N_('Category'),
    'holder.certificates': N_('Verified certificates'),
    'holder.employments': N_('Employment'),
    'holder.decisions': N_('Current decisions'),
    'holder.decisions.none': N_('No current decision.'),
    'holder.withdrawn': N_('Withdrawn decisions'),
    'holder.withdrawn.none': N_('No withdrawn decision.'),
    'holder.history': N_('History'),
    'holder.letter': N_('Print the decision letter'),
    'holder.not_found': N_("This holder is not known to this jurisdiction's bureau."),
    'decision.benefit': N_('Benefit'),
    'decision.outcome': N_('Outcome'),
    'decision.clause': N_('Clause'),
    'decision.reasons': N_('Reasons'),
    'decision.conditions': N_('Still to show'),
    'decision.readings': N_('Reading'),
    'decision.decided_at': N_('Decided at'),
    'decision.withdrawn_reason': N_('Why withdrawn'),
    'decision.review': N_('Review'),
    'decision.state': N_('State'),
    'decision.state.current': N_('current'),
    'decision.state.withdrawn': N_('withdrawn'),
    'outcome.eligible': N_('eligible'),
    'outcome.conditional': N_('conditional'),
    'outcome.advisory': N_('advisory'),
    'outcome.ineligible': N_('ineligible'),
    'cert.code': N_('Code'),
    'cert.revoked': N_('revoked'),
    'cert.valid': N_('valid'),
    'emp.employer': N_('Employer'),
    'emp.region': N_('Region'),
    'emp.started': N_('Started'),
    'emp.ended': N_('Ended'),
    'letter.title': N_('Notice of benefit decisions for an international professional qualification'),
    'letter.to': N_('Holder id'),
    'letter.intro': N_(
        'Following verification, and under the 2025 International Professional Qualification Recognition '
        'Catalogue and the Beijing–Tianjin–Hebei mutual recognition rules, your benefits are decided as '
        'follows:'
    ),
    'letter.date': N_('Date'),
    'letter.issuer': N_('Human Resources and Social Security, {jurisdiction}'),
    'letter.print': N_('Print'),
    'letter.note': N_(
        "This notice rests on the platform's verification and your employment. The verification confirms the "
        "certificate's authenticity only."
    ),
    'ops.title': N_('Operations'),
    'ops.platform': N_('Verification platform'),
    'ops.bureaus': N_('Bureaus'),
    'ops.lag': N_('Consumer lag'),
    'ops.counts': N_('Counts'),
    'ops.lag.unavailable': N_('unavailable'),
    'error.title': N_('Something to fix'),
    'error.fix': N_('Please change the following:'),
    'error.not_found': N_('There is no such page.'),
    'error.too_many': N_('Too many checks: try again in {seconds} seconds.'),
    'error.too_large': N_('What was sent is too large.'),
    'error.server': N_('The service is unavailable for now; try again later.'),
    'error.back': N_('Back to the home page'),
    'footer.notice': N_('Under 京人社事业发〔2025〕11号 and its 附件2 (the certificate verification platform).'),
    'required': N_('required'),
}
"""Key → English msgid. Templates call ``t(key)``."""


def negotiate(accept_language: str | None) -> str:
    """The page language for an ``Accept-Language`` header: the catalogue's choice where the header names a
    language mra speaks, else Simplified Chinese (the default of a platform for 京津冀)."""
    tags = [part.split(";", 1)[0] for part in (accept_language or "")[:500].split(",")]
    if not any(i18n.normalize(t.strip()) for t in tags):
        return DEFAULT
    return i18n.negotiate(accept_language[:500] if accept_language else None)


def translator(lang: str) -> Callable[[str], str]:
    """``t(key)`` in ``lang`` (``zh_CN`` or ``en``): the key's message through the catalogue, the key itself for a
    key that has no message."""
    translate = i18n.translator(lang if lang in LANGS else DEFAULT)

    def t(key: str) -> str:
        message = MESSAGES.get(key)
        return translate(message) if message is not None else key

    return t
