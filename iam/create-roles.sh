#!/usr/bin/env bash
# Creates the two instance profiles cluster.yaml names, once per AWS account (needs IAM admin rights):
#   tis-ray-head    the head: Ray's autoscaler launches and ends workers with it (EC2 + iam:PassRole for the
#                   worker profile), and the sweep's driver on the head reads and writes the run directories
#   tis-ray-worker  GPU workers: read and write the run directories in the bucket, nothing else
# Replace 123456789012 (account) and tis-ray-runs (bucket) in the JSON files first, or pass them here:
#   ACCOUNT=210987654321 BUCKET=my-runs bash iam/create-roles.sh
set -euo pipefail
cd "$(dirname "$0")"
account=${ACCOUNT:-123456789012}
bucket=${BUCKET:-tis-ray-runs}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for f in head-autoscaler-policy.json s3-runs-policy.json; do
  sed -e "s/123456789012/$account/g" -e "s/tis-ray-runs/$bucket/g" "$f" >"$tmp/$f"
done
for role in tis-ray-head tis-ray-worker; do
  aws iam create-role --role-name "$role" --assume-role-policy-document file://ec2-trust-policy.json
  aws iam put-role-policy --role-name "$role" --policy-name tis-ray-s3-runs \
    --policy-document "file://$tmp/s3-runs-policy.json"
  aws iam create-instance-profile --instance-profile-name "$role"
  aws iam add-role-to-instance-profile --instance-profile-name "$role" --role-name "$role"
done
aws iam put-role-policy --role-name tis-ray-head --policy-name tis-ray-autoscaler \
  --policy-document "file://$tmp/head-autoscaler-policy.json"
echo "created instance profiles tis-ray-head and tis-ray-worker; set their ARNs (account $account) in cluster.yaml"
