from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from reviews.lifecycle import transcripts_export
from reviews.models import Project


class Command(BaseCommand):
    help = ("Export transcripts and labels (never audio) of a project's finished clips to JSON lines, with a "
            "manifest of what left. Clips labelled as containing personal information stay out unless "
            "--include-personal-information. Audited.")

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True)
        parser.add_argument("--out", required=True, help="folder for the export and its manifest")
        parser.add_argument("--admin", required=True, help="the admin taking the export (named in the audit)")
        parser.add_argument("--include-personal-information", action="store_true")

    def handle(self, *args, **options):
        admin = get_user_model().objects.filter(username=options["admin"], is_staff=True, is_active=True).first()
        project = Project.objects.filter(slug=options["project"]).first()
        if admin is None or project is None:
            raise CommandError("--admin must name an active admin and --project an existing project.")
        result = transcripts_export(admin=admin, project=project, out_dir=Path(options["out"]),
                                    include_personal_information=options["include_personal_information"])
        self.stdout.write(f"Exported {result.clips} clips ({result.transcriptions} transcriptions) to "
                          f"{result.data_path}; {result.withheld_personal_information} withheld for personal "
                          f"information. Manifest: {result.manifest_path}")
