"""GitHub webhooks: comments, stars, forks and new members to comments, likes, shares and joins.

Verify: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>` (the SHA-1
`X-Hub-Signature` is not accepted). No timestamp is signed and GitHub never retries
on its own: redeliveries keep `X-GitHub-Delivery`, which is the event id (it is also
shared by every hook that receives the same event, so a repository and an
organization hook on the same event collapse into one). Form deliveries
(`payload=<json>`) are accepted. Community: `repository.full_name`
(`organization.login` for organization events); per-community secrets are looked
up for `owner/repo`, then `owner` (one secret per organization hook).

- `ping` -> handshake: 200.
- `issue_comment`, `discussion_comment`, `pull_request_review_comment` (created) -> comment
  on `issue:<id>` / `discussion:<id>` / `pull_request:<id>`, target author its opener.
- `star` (created) -> like of `repo:<id>`, occurred_at = `starred_at`.
- `fork` -> share of `repo:<id>`, occurred_at = `forkee.created_at`.
- `member` (added) -> join (invite) of the collaborator, occurred_at = request time.
- `organization` (member_added) -> join (invite) in community `<org login>`, at request time.
- `organization` (member_removed) -> forget the member in `<org login>` and its repositories
  (`<org>/<repo>`; with pseudonymization on only the organization community: docs/privacy.md).
Roles: `author_association` OWNER -> owner, MEMBER/COLLABORATOR -> moderator,
`user.type` Bot -> bot; the repository owner starring or forking -> owner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from schemas.events import ActorRole, EventType, JoinSource
from streams.webhooks.adapter import Outcome
from streams.webhooks.canonical import Context, Draft
from streams.webhooks.config import Secret
from streams.webhooks.payload import (
    JsonObject,
    MappingError,
    ident,
    iso_time,
    obj,
    opt_ident,
    opt_iso_time,
    opt_obj,
    opt_text,
    text,
)
from streams.webhooks.results import Forget, Handshake, Ignored, Rejected
from streams.webhooks.signing import check_prefixed_hmac

SIGNATURE = "X-Hub-Signature-256"
DELIVERY = "x-github-delivery"
PING_ANSWER = b'{"ok":true}'
STAFF_ASSOCIATIONS = {
    "OWNER": ActorRole.OWNER,
    "MEMBER": ActorRole.MODERATOR,
    "COLLABORATOR": ActorRole.MODERATOR,
}
# event -> (payload key of the thing commented on, target kind)
COMMENT_EVENTS = {
    "issue_comment": ("issue", "issue"),
    "discussion_comment": ("discussion", "discussion"),
    "pull_request_review_comment": ("pull_request", "pull_request"),
}


def _full_name(payload: JsonObject) -> str | None:
    repo = opt_obj(payload, "repository")
    return opt_text(repo, "full_name") if repo else None


def _org_login(payload: JsonObject) -> str | None:
    org = opt_obj(payload, "organization")
    return opt_text(org, "login") if org else None


class GitHubAdapter:
    def secret_scopes(self, payload: JsonObject, headers: Mapping[str, str]) -> Sequence[str]:
        full_name = _full_name(payload)
        if full_name:
            return (full_name, full_name.split("/", 1)[0])
        org = _org_login(payload)
        return (org,) if org else ()

    def verify(self, headers: Mapping[str, str], body: bytes, secrets: Sequence[Secret], now: float) -> Rejected | None:
        return check_prefixed_hmac(headers, SIGNATURE, "sha256=", secrets, body)

    def map(self, payload: JsonObject, headers: Mapping[str, str], ctx: Context) -> Outcome:
        event = headers.get("x-github-event", "")
        if event == "ping":
            return Handshake(200, PING_ANSWER, "application/json")
        delivery = headers.get(DELIVERY, "").strip()
        if not delivery:
            raise MappingError(f"headers.{DELIVERY}", "required header is missing", missing=True)
        action = payload.get("action")
        if event in COMMENT_EVENTS:
            if action != "created":
                return Ignored(f"github {event} action {action!r} is not used")
            return _comment(payload, event, delivery, ctx)
        if event == "star":
            return _repo_action(payload, EventType.LIKE, delivery, ctx) if action == "created" else _skip(event, action)
        if event == "fork":
            return _repo_action(payload, EventType.SHARE, delivery, ctx)
        if event == "member":
            return _member_added(payload, delivery, ctx) if action == "added" else _skip(event, action)
        if event == "organization":
            if action == "member_removed":
                org = text(obj(payload, "organization"), "login", "organization")
                user = obj(obj(payload, "membership"), "user", "membership")
                member = ctx.member_ref(org, ident(user, "id", "membership.user"))
                return Forget(org, member, "github organization member_removed")
            return _org_member_added(payload, delivery, ctx) if action == "member_added" else _skip(event, action)
        return Ignored(f"github event {event!r} is not used")


def _skip(event: str, action: object) -> Ignored:
    return Ignored(f"github {event} action {action!r} is not used")


def _repository(payload: JsonObject) -> tuple[JsonObject, str]:
    repo = obj(payload, "repository")
    return repo, text(repo, "full_name", "repository")


def _user_role(user: JsonObject, association: object = None) -> ActorRole:
    if user.get("type") == "Bot":
        return ActorRole.BOT
    return STAFF_ASSOCIATIONS.get(association, ActorRole.MEMBER) if isinstance(association, str) else ActorRole.MEMBER


def _comment(payload: JsonObject, event: str, delivery: str, ctx: Context) -> Outcome:
    _, community = _repository(payload)
    comment = obj(payload, "comment")
    user = obj(comment, "user", "comment")
    subject_key, kind = COMMENT_EVENTS[event]
    subject = obj(payload, subject_key)
    subject_user = opt_obj(subject, "user")
    body = comment.get("body")
    return [
        Draft(
            key=delivery,
            type=EventType.COMMENT,
            base_community=community,
            community_id=community,
            member_id=ident(user, "id", "comment.user"),
            occurred_at=iso_time(comment, "created_at", "comment"),
            actor_role=_user_role(user, comment.get("author_association")),
            target_id=f"{kind}:{ident(subject, 'id', subject_key)}",
            target_author_id=opt_ident(subject_user, "id") if subject_user else None,
            text=body if isinstance(body, str) else None,
        )
    ]


def _repo_action(payload: JsonObject, kind: EventType, delivery: str, ctx: Context) -> Outcome:
    repo, community = _repository(payload)
    sender = obj(payload, "sender")
    member = ident(sender, "id", "sender")
    owner = opt_obj(repo, "owner")
    owner_id = opt_ident(owner, "id") if owner else None
    if kind is EventType.LIKE:
        occurred = opt_iso_time(payload, "starred_at") or ctx.now
    else:
        forkee = opt_obj(payload, "forkee")
        occurred = (opt_iso_time(forkee, "created_at", "forkee") if forkee else None) or ctx.now
    role = _user_role(sender)
    if role is ActorRole.MEMBER and member == owner_id:
        role = ActorRole.OWNER
    return [
        Draft(
            key=delivery,
            type=kind,
            base_community=community,
            community_id=community,
            member_id=member,
            occurred_at=occurred,
            actor_role=role,
            target_id=f"repo:{ident(repo, 'id', 'repository')}",
            target_author_id=owner_id,
        )
    ]


def _member_added(payload: JsonObject, delivery: str, ctx: Context) -> Outcome:
    _, community = _repository(payload)
    return _invited(delivery, community, obj(payload, "member"), "member", ctx)


def _org_member_added(payload: JsonObject, delivery: str, ctx: Context) -> Outcome:
    community = text(obj(payload, "organization"), "login", "organization")
    user = obj(obj(payload, "membership"), "user", "membership")
    return _invited(delivery, community, user, "membership.user", ctx)


def _invited(delivery: str, community: str, user: JsonObject, path: str, ctx: Context) -> Outcome:
    """A member added by an admin: a join by invitation, timed on arrival (the payload has no time)."""
    return [
        Draft(
            key=delivery,
            type=EventType.JOIN,
            base_community=community,
            community_id=community,
            member_id=ident(user, "id", path),
            occurred_at=ctx.now,
            actor_role=_user_role(user),
            join_source=JoinSource.INVITE,
        )
    ]
