# Issue 11, parts 1 and 4: ASR hypothesis and gold reference on clips, WER and gold scores on
# transcriptions, the project's gold rate and minimum accuracy, and reviewer pauses.

import django.core.validators
import django.db.models.deletion
from decimal import Decimal
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('reviews', '0012_workspace_friction'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='ReviewerPause',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('paused_at', models.DateTimeField()),
                ('reason', models.CharField(max_length=300)),
                ('accuracy', models.FloatField(blank=True, null=True)),
                ('threshold', models.DecimalField(blank=True, decimal_places=4, max_digits=5, null=True)),
                ('gold_count', models.PositiveIntegerField(default=0)),
                ('lifted_at', models.DateTimeField(blank=True, null=True)),
            ],
            options={
                'ordering': ['-paused_at'],
            },
        ),
        migrations.AddField(
            model_name='clip',
            name='asr_confidence',
            field=models.FloatField(blank=True, null=True, validators=[django.core.validators.MinValueValidator(0.0), django.core.validators.MaxValueValidator(1.0)]),
        ),
        migrations.AddField(
            model_name='clip',
            name='asr_text',
            field=models.TextField(blank=True, default=''),
        ),
        migrations.AddField(
            model_name='clip',
            name='gold_labels',
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name='clip',
            name='gold_text',
            field=models.TextField(blank=True, default=''),
        ),
        migrations.AddField(
            model_name='clip',
            name='is_gold',
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name='project',
            name='gold_rate',
            field=models.DecimalField(decimal_places=4, default=Decimal('0.05'), help_text='Share of leases that serve a gold clip when one is left for the reviewer (0.05 = 1 in 20).', max_digits=5, validators=[django.core.validators.MinValueValidator(Decimal('0')), django.core.validators.MaxValueValidator(Decimal('1'))]),
        ),
        migrations.AddField(
            model_name='project',
            name='min_gold_accuracy',
            field=models.DecimalField(blank=True, decimal_places=4, help_text='A reviewer whose gold accuracy falls below this (0.80 = 80%) is paused on this project until an admin lifts it; empty means never.', max_digits=5, null=True, validators=[django.core.validators.MinValueValidator(Decimal('0')), django.core.validators.MaxValueValidator(Decimal('1'))]),
        ),
        migrations.AddField(
            model_name='project',
            name='min_gold_samples',
            field=models.PositiveSmallIntegerField(default=5, help_text='Gold clips a reviewer must have done before their accuracy can pause them.', validators=[django.core.validators.MinValueValidator(1)]),
        ),
        migrations.AddField(
            model_name='transcription',
            name='asr_wer',
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='transcription',
            name='draft_source',
            field=models.CharField(blank=True, choices=[('blank', 'typed from scratch'), ('asr', "corrected from the recognizer's draft")], default='', max_length=10),
        ),
        migrations.AddField(
            model_name='transcription',
            name='gold_label_accuracy',
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='transcription',
            name='gold_wer',
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name='clip',
            index=models.Index(condition=models.Q(('is_gold', True)), fields=['project', 'ingested_at'], name='clip_gold_idx'),
        ),
        migrations.AddField(
            model_name='reviewerpause',
            name='lifted_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='reviewerpause',
            name='project',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='pauses', to='reviews.project'),
        ),
        migrations.AddField(
            model_name='reviewerpause',
            name='reviewer',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='pauses', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddConstraint(
            model_name='reviewerpause',
            constraint=models.UniqueConstraint(condition=models.Q(('lifted_at__isnull', True)), fields=('reviewer', 'project'), name='reviewerpause_one_active'),
        ),
    ]
