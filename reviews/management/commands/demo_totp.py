from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice


class Command(BaseCommand):
    help = "Demo only: print the current TOTP code of a demo user's authenticator (refused in production)."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError("demo_totp is for the local demo only.")
        device = TOTPDevice.objects.filter(user__username=options["username"], name="demo authenticator").first()
        if device is None:
            raise CommandError("No demo authenticator for that user (run seed_demo).")
        code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)
        self.stdout.write(f"{code:0{device.digits}d}")
