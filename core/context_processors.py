from .roles import is_staff_member, role_of


def roles(request):
    user = getattr(request, "user", None)
    return {"is_staff_member": is_staff_member(user), "user_role": role_of(user)}
