package main

import (
	"strings"
	"testing"
)

// alarmByID is the properties of the alarm whose logical id starts with
// prefix.
func alarmByID(t *testing.T, tmpl map[string]any, prefix string) map[string]any {
	t.Helper()
	for id, a := range resourcesOf(tmpl, "AWS::CloudWatch::Alarm") {
		if strings.HasPrefix(id, prefix+"Alarm") {
			return a
		}
	}
	t.Fatalf("no alarm %s", prefix)
	return nil
}

// TestEnforcementLagAlarmsOnUploadsOnly: the enforcement-lag alarm watches
// the age of the oldest message of the uploads queue (SQS's
// ApproximateAgeOfOldestMessage, docs/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.md),
// at the configured threshold (minutes by default); no alarm watches the
// age of the work queue's, which a large backfill keeps old for days.
func TestEnforcementLagAlarmsOnUploadsOnly(t *testing.T) {
	for _, tc := range []struct {
		name      string
		configure func(*Config)
		want      float64
	}{
		{"default", func(*Config) {}, 300},
		{"configured", func(c *Config) { c.AlarmEnforcementLagSeconds = 900 }, 900},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := exampleConfig(t)
			tc.configure(cfg)
			tmpl, _ := synth(t, cfg)
			lag := alarmByID(t, tmpl, "EnforcementLag")
			dims := js(lag["Dimensions"])
			if lag["Namespace"] != "AWS/SQS" || lag["MetricName"] != "ApproximateAgeOfOldestMessage" || lag["Statistic"] != "Maximum" ||
				!strings.Contains(dims, "UploadsQueue") || strings.Contains(dims, "DeadLetter") {
				t.Errorf("EnforcementLag watches %v %v %v of %s, want the uploads queue's oldest message", lag["Namespace"], lag["MetricName"], lag["Statistic"], dims)
			}
			if lag["Threshold"] != tc.want || lag["ComparisonOperator"] != "GreaterThanOrEqualToThreshold" || lag["Period"] != 60.0 {
				t.Errorf("EnforcementLag: threshold %v (%v) every %v s, want %v every 60 s", lag["Threshold"], lag["ComparisonOperator"], lag["Period"], tc.want)
			}
			for id, a := range resourcesOf(tmpl, "AWS::CloudWatch::Alarm") {
				if a["MetricName"] == "ApproximateAgeOfOldestMessage" && strings.Contains(js(a["Dimensions"]), `"WorkQueue`) {
					t.Errorf("alarm %s fires on the age of the work queue's oldest message: a backfill's backlog", id)
				}
			}
		})
	}
}

// TestBackfillStalledAlarmsOnlyWithoutProgress: the backlog alarm is a
// metric math alarm that fires only when the work queue holds messages
// (ApproximateNumberOfMessagesVisible > 0) and none was deleted
// (NumberOfMessagesDeleted == 0) in each of the configured minutes' 5-minute
// periods: a comparison gives 1 or 0 and AND combines them
// (docs/AmazonCloudWatch/latest/monitoring/using-metric-math.md).
func TestBackfillStalledAlarmsOnlyWithoutProgress(t *testing.T) {
	for _, tc := range []struct {
		name      string
		configure func(*Config)
		periods   float64
	}{
		{"default", func(*Config) {}, 6},
		{"configured", func(c *Config) { c.AlarmBackfillStalledMinutes = 60 }, 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := exampleConfig(t)
			tc.configure(cfg)
			tmpl, _ := synth(t, cfg)
			a := alarmByID(t, tmpl, "BackfillStalled")
			if a["EvaluationPeriods"] != tc.periods || a["Threshold"] != 1.0 || a["ComparisonOperator"] != "GreaterThanOrEqualToThreshold" ||
				a["TreatMissingData"] != "notBreaching" {
				t.Errorf("BackfillStalled: %v periods, threshold %v %v, missing data %v; want %v periods at 1", a["EvaluationPeriods"], a["Threshold"],
					a["ComparisonOperator"], a["TreatMissingData"], tc.periods)
			}
			var expr string
			stats := map[string]string{}
			for _, q := range asList(a["Metrics"]) {
				m := q.(map[string]any)
				if e, ok := m["Expression"].(string); ok {
					expr = e
					if m["ReturnData"] == false {
						t.Errorf("the expression %s is not what the alarm evaluates", e)
					}
					continue
				}
				stat := m["MetricStat"].(map[string]any)
				metric := stat["Metric"].(map[string]any)
				if !strings.Contains(js(metric["Dimensions"]), `"WorkQueue`) || stat["Period"] != 300.0 {
					t.Errorf("%s is not the work queue's every 5 minutes: %s", m["Id"], js(stat))
				}
				stats[m["Id"].(string)] = metric["MetricName"].(string) + "/" + stat["Stat"].(string)
			}
			if stats["backlog"] != "ApproximateNumberOfMessagesVisible/Maximum" || stats["progress"] != "NumberOfMessagesDeleted/Sum" {
				t.Errorf("metrics %v, want the work queue's backlog (visible, Maximum) and progress (deleted, Sum)", stats)
			}
			if expr != "IF(backlog > 0 AND progress == 0, 1, 0)" {
				t.Errorf("expression %q", expr)
			}
		})
	}
}

// TestAlarmSettingsValidated: the alarms' settings are refused outside
// what CloudWatch and their meaning allow.
func TestAlarmSettingsValidated(t *testing.T) {
	for name, ctx := range map[string]map[string]any{
		"lag under a minute":          {"alarmEnforcementLagSeconds": 30},
		"stalled not a multiple of 5": {"alarmBackfillStalledMinutes": 17},
		"stalled too short":           {"alarmBackfillStalledMinutes": 10},
		"stalled over a day":          {"alarmBackfillStalledMinutes": 1445},
	} {
		t.Run(name, func(t *testing.T) {
			ctx["buckets"] = map[string]any{"example-bucket": map[string]any{"kmsKeyArn": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}}
			if _, err := ParseConfig(ctx); err == nil || !strings.Contains(err.Error(), "alarm") {
				t.Errorf("accepted, or not named: %v", err)
			}
		})
	}
}
