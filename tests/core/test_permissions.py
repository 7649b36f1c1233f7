"""The role-to-permission map."""

from __future__ import annotations

import pytest

from conference.core.permissions import ROLE_PERMISSIONS, Permission, Role, has_permission

EXPECTED = {
    Role.ATTENDEE: {Permission.JOIN_LIVE, Permission.CHAT},
    Role.SPEAKER: {Permission.JOIN_LIVE, Permission.CHAT, Permission.UPLOAD_OWN_SLIDES, Permission.EDIT_OWN_PROFILE},
    Role.MODERATOR: {Permission.JOIN_LIVE, Permission.CHAT, Permission.MODERATE, Permission.SEE_PARTICIPANTS,
                     Permission.VIEW_EVENT},
    Role.ORGANISER: set(Permission),
}


@pytest.mark.parametrize("role", list(Role))
def test_role_permissions(role: Role) -> None:
    assert set(ROLE_PERMISSIONS[role]) == EXPECTED[role]


@pytest.mark.parametrize("permission", list(Permission))
@pytest.mark.parametrize("role", [None, *Role])
def test_has_permission_matrix(person, create_event, role: Role | None, permission: Permission) -> None:
    event = create_event()
    other_event = create_event()
    user = person(event, role)
    expected = role is not None and permission in EXPECTED[role]
    assert has_permission(user, event, permission) is expected
    assert has_permission(user, other_event, permission) is False


def test_admin_has_every_permission(create_user, create_event) -> None:
    admin = create_user(is_admin=True)
    event = create_event()
    assert all(has_permission(admin, event, p) for p in Permission)


def test_anonymous_has_no_permission(create_event) -> None:
    from flask_login import AnonymousUserMixin

    event = create_event()
    assert not any(has_permission(AnonymousUserMixin(), event, p) for p in Permission)
    assert not has_permission(None, event, Permission.CHAT)
