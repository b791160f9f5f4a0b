from submissions.models import Bot


def bot_get_active(*, slug: str) -> Bot | None:
    return Bot.objects.filter(slug=slug, is_active=True).first()
