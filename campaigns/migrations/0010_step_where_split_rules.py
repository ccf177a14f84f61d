import django.db.models
from django.db import migrations

import campaigns.models


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0009_error_rule_pattern_help")]

    operations = [
        migrations.AddField(
            model_name="step",
            name="where",
            field=django.db.models.TextField(
                blank=True, help_text="A Butler 'where' ANDed to the campaign's data query for this step's groups."
            ),
        ),
        migrations.AlterField(
            model_name="step",
            name="split",
            field=django.db.models.JSONField(
                blank=True,
                default=campaigns.models.default_split,
                help_text='How the step is cut into groups (campaigns.splits): {"by": "night"}, '
                '{"by": "exposure"|"visit"|"detector", "max_size": N}, {"by": "band"}, '
                '{"by": "tract", "skymap": NAME}, {"by": "list", "groups": [{"name": ..., "where": ...}]} or '
                '{"by": "dataid_set", "dataid_set": NAME, "version": N, "max_size": M}.',
            ),
        ),
    ]
