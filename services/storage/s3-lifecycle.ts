import { type LifecycleRule, PutBucketLifecycleConfigurationCommand, type S3Client } from "@aws-sdk/client-s3";

export interface LifecycleDays {
  readonly mediaExpireDays: number;
  readonly mediaArchiveDays: number;
  readonly tempExpireDays: number;
  readonly uploadExpireDays: number;
  /** Storage class for archived media; empty skips the transition. */
  readonly archiveStorageClass: string;
}

/** The bucket's lifecycle rules for our key layout (S3 counts in whole days, so sub-day TTLs round up). */
export function lifecycleRules(days: LifecycleDays, withTransition: boolean): LifecycleRule[] {
  return [
    {
      ID: "mentatlab-media",
      Status: "Enabled",
      Filter: { Prefix: "media/" },
      Expiration: { Days: days.mediaExpireDays },
      ...(withTransition && days.archiveStorageClass
        ? { Transitions: [{ Days: days.mediaArchiveDays, StorageClass: days.archiveStorageClass as never }] }
        : {}),
    },
    { ID: "mentatlab-temp", Status: "Enabled", Filter: { Prefix: "temp/" }, Expiration: { Days: days.tempExpireDays } },
    {
      ID: "mentatlab-uploads",
      Status: "Enabled",
      Filter: { Prefix: "uploads/" },
      Expiration: { Days: days.uploadExpireDays },
      AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
    },
  ];
}

/** What start-up managed to apply. */
export type LifecycleOutcome = "applied" | "applied-without-archive" | "unsupported";

/**
 * Puts lifecycle rules on the bucket. Servers without a configured archive tier (e.g. MinIO without
 * tiering) refuse the transition: retry without it. Servers without lifecycle support at all leave
 * expiry to the service's own sweeper, which runs on every backend anyway.
 */
export async function applyLifecycle(client: S3Client, bucket: string, days: LifecycleDays): Promise<LifecycleOutcome> {
  const put = (withTransition: boolean) =>
    client.send(
      new PutBucketLifecycleConfigurationCommand({
        Bucket: bucket,
        LifecycleConfiguration: { Rules: lifecycleRules(days, withTransition) },
      }),
    );
  try {
    await put(true);
    return days.archiveStorageClass ? "applied" : "applied-without-archive";
  } catch {
    try {
      await put(false);
      return "applied-without-archive";
    } catch {
      return "unsupported";
    }
  }
}
